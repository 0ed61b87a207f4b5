package dev.modelpress.storage;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

class ArtifactStoreHealthIndicatorTest {

  @TempDir Path tmp;

  @Test
  void filesystemStoreIsUpWithAReadableRootAndDownWhenTheRootIsGone() throws Exception {
    Path root = tmp.resolve("artifacts");
    FileSystemArtifactStore store = new FileSystemArtifactStore(root);
    store.put("models/a", new ByteArrayInputStream(new byte[] {1, 2, 3}));
    ArtifactStoreHealthIndicator indicator = new ArtifactStoreHealthIndicator(store);
    Health up = indicator.health();
    assertThat(up.getStatus()).isEqualTo(Status.UP);
    assertThat(up.getDetails()).containsEntry("type", "filesystem");

    // The volume is unmounted and something else sits where the root was.
    Files.move(root, tmp.resolve("elsewhere"));
    Files.writeString(root, "not a directory");
    Health down = indicator.health();
    assertThat(down.getStatus()).isEqualTo(Status.DOWN);
    assertThat(down.getDetails().get("error").toString()).contains("directory");
  }

  @Test
  void s3StoreIsDownWhenItsEndpointDoesNotAnswer() throws Exception {
    int closedPort;
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      closedPort = s.getLocalPort();
    }
    try (S3Client client = S3Client.builder()
        .region(Region.US_EAST_1)
        .forcePathStyle(true)
        .endpointOverride(URI.create("http://127.0.0.1:" + closedPort))
        .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create("k", "s")))
        .httpClientBuilder(UrlConnectionHttpClient.builder())
        .build()) {
      Health health = new ArtifactStoreHealthIndicator(new S3ArtifactStore(client, "bucket", S3ArtifactStore.MIN_PART_SIZE))
          .health();
      assertThat(health.getStatus()).isEqualTo(Status.DOWN);
      assertThat(health.getDetails()).containsEntry("type", "s3").containsEntry("bucket", "bucket");
      assertThat(health.getDetails().get("error")).isNotNull();
    }
  }
}
