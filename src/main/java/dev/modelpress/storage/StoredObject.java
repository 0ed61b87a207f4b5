package dev.modelpress.storage;

import java.util.Objects;

/**
 * An object as the store holds it.
 *
 * @param key the object's key, see {@link ArtifactKeys}
 * @param size the number of bytes
 * @param sha256 the SHA-256 of the bytes in lowercase hex, or {@code null} when the store cannot
 *     know it cheaply (only {@link S3ArtifactStore#stat} of an object written by another tool)
 */
public record StoredObject(String key, long size, String sha256) {

  public StoredObject {
    Objects.requireNonNull(key, "key");
    if (size < 0) {
      throw new IllegalArgumentException("size must not be negative: " + size);
    }
  }
}
