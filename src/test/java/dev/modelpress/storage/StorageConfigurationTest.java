package dev.modelpress.storage;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import software.amazon.awssdk.services.s3.S3Client;

class StorageConfigurationTest {

  final ApplicationContextRunner runner =
      new ApplicationContextRunner().withUserConfiguration(StorageConfiguration.class);

  @Test
  void withoutPropertiesBuildsTheFilesystemStoreUnderDataArtifacts() {
    runner.run(
        context -> {
          assertThat(context).hasSingleBean(ArtifactStore.class).doesNotHaveBean(S3Client.class);
          assertThat(context.getBean(ArtifactStore.class))
              .isInstanceOfSatisfying(
                  FileSystemArtifactStore.class,
                  store ->
                      assertThat(store.root())
                          .isEqualTo(Path.of("data/artifacts").toAbsolutePath()));
        });
  }

  @Test
  void filesystemRootIsConfigurable(@TempDir Path root) {
    runner
        .withPropertyValues("modelpress.storage.filesystem.root=" + root)
        .run(
            context ->
                assertThat(context.getBean(FileSystemArtifactStore.class).root()).isEqualTo(root));
  }

  @Test
  void typeS3BuildsTheS3StoreAndItsClient() {
    runner
        .withPropertyValues(
            "modelpress.storage.type=s3",
            "modelpress.storage.s3.endpoint=http://127.0.0.1:9",
            "modelpress.storage.s3.bucket=artifacts",
            "modelpress.storage.s3.access-key=a",
            "modelpress.storage.s3.secret-key=b",
            "modelpress.storage.s3.part-size=16MB")
        .run(
            context -> {
              assertThat(context).hasSingleBean(ArtifactStore.class).hasSingleBean(S3Client.class);
              assertThat(context.getBean(ArtifactStore.class))
                  .isInstanceOfSatisfying(
                      S3ArtifactStore.class,
                      store -> assertThat(store.bucket()).isEqualTo("artifacts"));
              StorageProperties.S3 s3 = context.getBean(StorageProperties.class).s3();
              assertThat(s3.partSize().toBytes()).isEqualTo(16L * 1024 * 1024);
              assertThat(s3.pathStyleAccess()).isTrue();
              assertThat(s3.toString()).doesNotContain("secret-key=b").contains("******");
            });
  }

  @Test
  void s3DefaultsSuitAws() {
    StorageProperties.S3 s3 = new StorageProperties(null, null, null).s3();

    assertThat(s3.region()).isEqualTo("us-east-1");
    assertThat(s3.partSize().toBytes()).isEqualTo(8L * 1024 * 1024);
    assertThat(s3.pathStyleAccess()).isFalse();
    assertThat(s3.hasStaticCredentials()).isFalse();
    assertThat(s3.createBucket()).isFalse();
  }

  @Test
  void typeIsCaseInsensitive() {
    runner
        .withPropertyValues("modelpress.storage.type=S3", "modelpress.storage.s3.bucket=b")
        .run(context -> assertThat(context).hasSingleBean(S3ArtifactStore.class));
  }

  @Test
  void s3WithoutABucketFailsAtStartup() {
    runner
        .withPropertyValues("modelpress.storage.type=s3")
        .run(
            context ->
                assertThat(context)
                    .hasFailed()
                    .getFailure()
                    .rootCause()
                    .hasMessageContaining("modelpress.storage.s3.bucket"));
  }

  @Test
  void unknownTypeFailsAtStartup() {
    runner
        .withPropertyValues("modelpress.storage.type=gcs")
        .run(
            context ->
                assertThat(context)
                    .hasFailed()
                    .getFailure()
                    .hasMessageContaining("modelpress.storage"));
  }

  @Test
  void onlyOneOfAccessKeyAndSecretKeyFailsAtStartup() {
    runner
        .withPropertyValues(
            "modelpress.storage.type=s3",
            "modelpress.storage.s3.bucket=b",
            "modelpress.storage.s3.access-key=a")
        .run(
            context ->
                assertThat(context)
                    .hasFailed()
                    .getFailure()
                    .rootCause()
                    .hasMessageContaining("secret-key"));
  }

  @Test
  void createBucketCreatesTheMissingBucketOnAnS3Server() {
    S3MockServer server = S3MockServer.get();
    String bucket = "created-" + System.nanoTime();
    runner
        .withPropertyValues(
            "modelpress.storage.type=s3",
            "modelpress.storage.s3.endpoint=" + server.endpoint(),
            "modelpress.storage.s3.bucket=" + bucket,
            "modelpress.storage.s3.access-key=test",
            "modelpress.storage.s3.secret-key=test",
            "modelpress.storage.s3.create-bucket=true")
        .run(
            context -> {
              assertThat(context).hasNotFailed();
              try (S3Client client = server.client()) {
                assertThat(client.listBuckets().buckets()).anyMatch(b -> b.name().equals(bucket));
              }
              // And the store works against it end to end.
              ArtifactStore store = context.getBean(ArtifactStore.class);
              store.put("k", new java.io.ByteArrayInputStream(new byte[] {1, 2, 3}));
              assertThat(store.stat("k")).map(StoredObject::size).contains(3L);
            });
  }
}
