package dev.modelpress.storage;

import java.nio.file.Path;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

/**
 * Configuration of the storage module, under {@code modelpress.storage}. Every value has a default,
 * so the application starts with no configuration at all on a local filesystem store.
 *
 * @param type which store to build: {@code filesystem} (default) or {@code s3}
 * @param filesystem settings of the filesystem store
 * @param s3 settings of the S3 store
 */
@ConfigurationProperties("modelpress.storage")
public record StorageProperties(Type type, Filesystem filesystem, S3 s3) {

  public StorageProperties {
    type = type == null ? Type.FILESYSTEM : type;
    filesystem = filesystem == null ? new Filesystem(null) : filesystem;
    s3 = s3 == null ? new S3(null, null, null, null, null, null, null, false) : s3;
  }

  /** The kinds of store. */
  public enum Type {
    FILESYSTEM,
    S3
  }

  /**
   * Settings of {@link FileSystemArtifactStore}.
   *
   * @param root the directory that holds the objects; default {@code ./data/artifacts}
   */
  public record Filesystem(Path root) {

    public Filesystem {
      root = root == null ? Path.of("data", "artifacts") : root;
    }
  }

  /**
   * Settings of {@link S3ArtifactStore}.
   *
   * @param endpoint the server's URL, e.g. {@code http://minio:9000}; empty for AWS itself
   * @param region the signing region; default {@code us-east-1}
   * @param bucket the bucket; required when the type is {@code s3}
   * @param accessKey the access key; with {@code secretKey} empty too, the SDK's default
   *     credentials chain (environment, profile, container or instance role) is used
   * @param secretKey the secret key
   * @param pathStyle whether to address the bucket in the path ({@code host/bucket/key}) rather
   *     than the host name; default true when an endpoint is set (MinIO and most S3-compatible
   *     servers need it), false for AWS
   * @param partSize the buffer and multipart part size; default 8MB (binary: 8 MiB), at least 5MB
   * @param createBucket whether to create the bucket at startup when it is missing; default false
   */
  public record S3(
      String endpoint,
      String region,
      String bucket,
      String accessKey,
      String secretKey,
      Boolean pathStyle,
      DataSize partSize,
      boolean createBucket) {

    public S3 {
      endpoint = endpoint == null || endpoint.isBlank() ? null : endpoint.strip();
      region = region == null || region.isBlank() ? "us-east-1" : region.strip();
      partSize = partSize == null ? DataSize.ofBytes(S3ArtifactStore.DEFAULT_PART_SIZE) : partSize;
    }

    /** Whether path-style addressing is used, after applying the default. */
    public boolean pathStyleAccess() {
      return pathStyle != null ? pathStyle : endpoint != null;
    }

    /** Whether static keys are configured; false means the default credentials chain. */
    public boolean hasStaticCredentials() {
      boolean access = accessKey != null && !accessKey.isBlank();
      boolean secret = secretKey != null && !secretKey.isBlank();
      if (access != secret) {
        throw new IllegalStateException(
            "Set both modelpress.storage.s3.access-key and secret-key, or neither to use the"
                + " default AWS credentials chain");
      }
      return access;
    }

    // Keeps the secret out of logs and failure analyses that print the bound properties.
    @Override
    public String toString() {
      return "S3[endpoint=%s, region=%s, bucket=%s, accessKey=%s, secretKey=%s, pathStyle=%s, partSize=%s, createBucket=%s]"
          .formatted(
              endpoint,
              region,
              bucket,
              accessKey,
              secretKey == null || secretKey.isEmpty() ? "" : "******",
              pathStyle,
              partSize,
              createBucket);
    }
  }
}
