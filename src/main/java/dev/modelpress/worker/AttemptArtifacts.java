package dev.modelpress.worker;

import dev.modelpress.job.JobEntity;
import dev.modelpress.job.JobQueue;
import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.storage.StoredObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Stores the artifacts of one job attempt under {@code jobs/<id>/attempt-<n>/<name>}. Each key is
 * remembered in {@code storedKeys} before the write, so an attempt that fails or loses its lease
 * deletes everything it stored; a store that refuses a write becomes a {@link
 * JobRunner.StorageFailure} the client can act on.
 */
final class AttemptArtifacts {

  private final ArtifactStore store;
  private final String prefix;
  private final List<String> storedKeys;

  AttemptArtifacts(ArtifactStore store, JobEntity job, int attempt, List<String> storedKeys) {
    this.store = store;
    this.prefix = "jobs/" + job.getId() + "/attempt-" + attempt + "/";
    this.storedKeys = storedKeys;
  }

  /** The store key of the artifact {@code name}. */
  String key(String name) {
    return prefix + name;
  }

  /** Stores {@code file} as the artifact {@code name}; returns the row to record. */
  JobQueue.NewArtifact put(Path file, String name, String contentType) throws IOException {
    String key = key(name);
    storedKeys.add(key);
    StoredObject stored;
    try {
      stored = store.put(key, file);
    } catch (IOException | UncheckedIOException e) {
      throw new JobRunner.StorageFailure(key, e);
    }
    return new JobQueue.NewArtifact(name, key, contentType, stored.size(), stored.sha256());
  }
}
