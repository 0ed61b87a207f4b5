package dev.modelpress.storage;

import java.nio.file.Files;
import java.util.stream.Stream;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.stereotype.Component;

/**
 * Readiness of the artifact store (health component {@code artifactStore}): a pod that cannot reach
 * its bucket or directory should get no traffic. The check is cheap: for the filesystem store, that
 * the root is a directory it can read and write; for any store, listing the first key (one S3
 * request for a single page).
 */
@Component("artifactStore")
public class ArtifactStoreHealthIndicator implements HealthIndicator {

  private final ArtifactStore store;

  public ArtifactStoreHealthIndicator(ArtifactStore store) {
    this.store = store;
  }

  @Override
  public Health health() {
    Health.Builder health = Health.up().withDetail("type", store instanceof S3ArtifactStore ? "s3" : "filesystem");
    try {
      if (store instanceof FileSystemArtifactStore fs) {
        health.withDetail("root", fs.root().toString());
        if (!Files.isDirectory(fs.root()) || !Files.isReadable(fs.root()) || !Files.isWritable(fs.root())) {
          return health.down().withDetail("error", "root is not a readable and writable directory").build();
        }
      }
      if (store instanceof S3ArtifactStore s3) {
        health.withDetail("bucket", s3.bucket());
      }
      try (Stream<String> keys = store.list("")) {
        keys.findFirst();
      }
      return health.build();
    } catch (RuntimeException e) {
      return health.down().withDetail("error", e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage())
          .build();
    }
  }
}
