package dev.modelpress.storage;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Stores models, datasets and job artifacts as objects under string keys (see {@link ArtifactKeys}
 * for the rules).
 *
 * <p>Every implementation streams bytes without holding an object whole in the heap, computes the
 * SHA-256 while writing, and makes a write visible only once it is complete: a reader sees the old
 * object or the new one, never a partial or mixed one, and a failed write leaves the previous state
 * (object or no object) untouched.
 *
 * <p>Methods that declare {@link IOException} throw {@link ArtifactNotFoundException} for a missing
 * key where that matters; the others wrap I/O failures in {@link UncheckedIOException}. Invalid
 * keys throw {@link IllegalArgumentException}. Implementations are thread-safe.
 */
public interface ArtifactStore {

  /**
   * Streams {@code in} to the object {@code key}, replacing any existing object atomically. Reads
   * {@code in} to its end but does not close it.
   *
   * @return the key, the number of bytes stored and their SHA-256
   * @throws IOException if reading {@code in} or writing fails; nothing is then stored
   */
  StoredObject put(String key, InputStream in) throws IOException;

  /** Stores the content of {@code file} under {@code key}, as {@link #put(String, InputStream)}. */
  default StoredObject put(String key, Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      return put(key, in);
    }
  }

  /**
   * Opens the whole object for reading. The caller closes the stream.
   *
   * @throws ArtifactNotFoundException if there is no such object
   */
  InputStream open(String key) throws IOException;

  /**
   * Opens {@code length} bytes of the object starting at {@code offset}. A range that runs past the
   * end is cut at the end; an offset at or past the end gives an empty stream.
   *
   * @throws IllegalArgumentException if {@code offset} or {@code length} is negative
   * @throws ArtifactNotFoundException if there is no such object
   */
  InputStream open(String key, long offset, long length) throws IOException;

  /** The size and SHA-256 of the object, or empty if there is none. */
  Optional<StoredObject> stat(String key);

  /** Deletes the object if it exists; deleting a missing key is not an error. */
  void delete(String key);

  /**
   * Deletes every object whose key starts with {@code prefix} (plain string comparison, see {@link
   * ArtifactKeys#requireValidPrefix}).
   *
   * @throws IllegalArgumentException if {@code prefix} is empty: wiping the whole store takes
   *     {@link #list} and {@link #delete} on purpose
   */
  void deletePrefix(String prefix);

  /**
   * The keys that start with {@code prefix} ({@code ""} for all), in no particular order, read
   * lazily. Close the stream (try-with-resources): it may hold open directories or connections.
   */
  Stream<String> list(String prefix);

  /**
   * The object's file when this store keeps objects as local files, so callers can memory-map it
   * instead of copying. The file is replaced (never modified in place) by a later {@link #put}, so
   * a mapping stays consistent. Empty for remote stores and for missing keys.
   */
  Optional<Path> localFile(String key);
}
