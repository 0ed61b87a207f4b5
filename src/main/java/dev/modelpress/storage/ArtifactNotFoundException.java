package dev.modelpress.storage;

import java.io.IOException;

/**
 * The key names no object. An {@link IOException} because {@link ArtifactStore#open} already
 * declares that, so callers that only propagate I/O failures need no extra clause, while the web
 * layer can catch this type to answer 404.
 */
public class ArtifactNotFoundException extends IOException {

  private final String key;

  public ArtifactNotFoundException(String key) {
    this(key, null);
  }

  public ArtifactNotFoundException(String key, Throwable cause) {
    super("No artifact with key '" + key + "'", cause);
    this.key = key;
  }

  /** The key that was looked up. */
  public String key() {
    return key;
  }
}
