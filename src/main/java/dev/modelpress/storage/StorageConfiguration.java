package dev.modelpress.storage;

import java.net.URI;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;

/**
 * Builds the one {@link ArtifactStore} of the application from {@link StorageProperties}: the
 * filesystem store unless {@code modelpress.storage.type=s3}.
 */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(StorageProperties.class)
class StorageConfiguration {

  @Bean
  @ConditionalOnProperty(
      prefix = "modelpress.storage",
      name = "type",
      havingValue = "filesystem",
      matchIfMissing = true)
  FileSystemArtifactStore fileSystemArtifactStore(StorageProperties properties) {
    return new FileSystemArtifactStore(properties.filesystem().root());
  }

  /** The S3 store and the client it uses, which the context closes on shutdown. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnProperty(prefix = "modelpress.storage", name = "type", havingValue = "s3")
  static class S3StorageConfiguration {

    @Bean(destroyMethod = "close")
    S3Client artifactStoreS3Client(StorageProperties properties) {
      StorageProperties.S3 s3 = properties.s3();
      S3ClientBuilder builder =
          S3Client.builder()
              .region(Region.of(s3.region()))
              .forcePathStyle(s3.pathStyleAccess())
              .credentialsProvider(credentials(s3))
              // The only HTTP client on the classpath; naming it keeps the SDK from searching.
              .httpClientBuilder(UrlConnectionHttpClient.builder());
      if (s3.endpoint() != null) {
        builder.endpointOverride(URI.create(s3.endpoint()));
      }
      return builder.build();
    }

    @Bean
    S3ArtifactStore s3ArtifactStore(S3Client artifactStoreS3Client, StorageProperties properties) {
      StorageProperties.S3 s3 = properties.s3();
      if (s3.bucket() == null || s3.bucket().isBlank()) {
        throw new IllegalStateException(
            "modelpress.storage.type=s3 needs modelpress.storage.s3.bucket");
      }
      S3ArtifactStore store =
          new S3ArtifactStore(artifactStoreS3Client, s3.bucket(), s3.partSize().toBytes());
      if (s3.createBucket()) {
        store.createBucketIfMissing();
      }
      return store;
    }

    private static AwsCredentialsProvider credentials(StorageProperties.S3 s3) {
      if (s3.hasStaticCredentials()) {
        return StaticCredentialsProvider.create(
            AwsBasicCredentials.create(s3.accessKey(), s3.secretKey()));
      }
      return DefaultCredentialsProvider.builder().build();
    }
  }
}
