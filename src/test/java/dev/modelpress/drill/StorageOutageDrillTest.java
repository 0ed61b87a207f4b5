package dev.modelpress.drill;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.storage.StorageProperties;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;

/**
 * The object store refuses writes mid-run (here: the {@code jobs/} prefix of the filesystem store is
 * blocked by a plain file, which even root cannot write through). The job fails with a
 * {@code storage-unavailable} problem that says what happened, no artifact row points to a missing
 * object, nothing half-written stays behind, and once the store recovers the service carries on.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    // A context of its own (the extra property): the drill breaks its store, which no other test may share.
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.poll-interval=500ms",
        "spring.application.name=storage-outage-drill"})
@ActiveProfiles("test")
class StorageOutageDrillTest {

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;
  @Autowired StorageProperties storage;
  @TempDir Path tmp;

  @Test
  void aStoreThatRefusesWritesFailsTheJobWithAReasonAndLeavesNoDanglingRows() throws Exception {
    Api api = new Api(port);
    Path model = OnnxGraphBuilder.opset(13).input("x", 1, 16)
        .initializer("w", OnnxGraphBuilder.randomFloats(4, 256, 1f), 16, 16).matMul("x", "w", "y").output("y")
        .writeTo(tmp);
    String modelId = api.postFile("/v1/models", model).json().get("id").asString();
    String submit = "{\"modelId\":\"" + modelId + "\",\"steps\":[{\"type\":\"quantize\"}]}";

    Path jobsPrefix = storage.filesystem().root().resolve("jobs");
    deleteTree(jobsPrefix);
    Files.writeString(jobsPrefix, "the store is down");
    try {
      String failedId = api.postJson("/v1/jobs", submit).json().get("id").asString();
      JsonNode failed = api.awaitJob(failedId, Duration.ofSeconds(60));
      assertThat(failed.get("state").asString()).as(failed.toString()).isEqualTo("FAILED");
      JsonNode error = failed.get("error");
      assertThat(error.get("type").asString()).isEqualTo("https://modelpress.dev/problems/storage-unavailable");
      assertThat(error.get("detail").asString())
          .contains("artifact store could not store 'jobs/" + failedId + "/attempt-1/")
          .doesNotContain(storage.filesystem().root().toAbsolutePath().toString());
      assertThat(failed.get("artifacts").size()).isZero();
      assertThat(jdbc.sql("select count(*) from artifacts where job_id = ?").param(UUID.fromString(failedId))
          .query(Integer.class).single()).isZero();
    } finally {
      Files.delete(jobsPrefix);
    }

    // The store is back: the same request now succeeds and every artifact row has its object.
    String okId = api.postJson("/v1/jobs", submit).json().get("id").asString();
    JsonNode ok = api.awaitJob(okId, Duration.ofSeconds(60));
    assertThat(ok.get("state").asString()).as(ok.toString()).isEqualTo("SUCCEEDED");
    for (String key : jdbc.sql("select storage_key from artifacts").query(String.class).list()) {
      assertThat(storage.filesystem().root().resolve(key)).as(key).isRegularFile();
    }
  }

  private static void deleteTree(Path dir) throws Exception {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
