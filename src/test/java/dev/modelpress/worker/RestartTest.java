package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.ModelpressApplication;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.MiniLm;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import tools.jackson.databind.JsonNode;

/**
 * Stopping the service while a job runs hands the job back to the queue without spending an
 * attempt; the next start (same embedded database and store) runs it to completion.
 */
class RestartTest {

  @TempDir Path data;

  @Test
  void shutdownHandsTheRunningJobBackAndTheNextStartFinishesIt() {
    String jobId;
    try (ConfigurableApplicationContext first = start()) {
      Api api = new Api(port(first));
      String modelId = api.postFile("/v1/models", MiniLm.modelFile()).json().get("id").asString();
      StringBuilder steps = new StringBuilder();
      for (int i = 1; i <= 16; i++) {
        steps.append(i > 1 ? "," : "").append("{\"type\":\"prune\",\"sparsity\":").append(i * 0.05).append("}");
      }
      jobId = api.postJson("/v1/jobs", "{\"modelId\":\"" + modelId + "\",\"steps\":[" + steps + "]}")
          .json().get("id").asString();
      api.awaitJob(jobId, Duration.ofMinutes(2), "RUNNING");
    }

    try (ConfigurableApplicationContext second = start()) {
      Api api = new Api(port(second));
      JsonNode job = api.awaitJob(jobId, Duration.ofMinutes(5));
      assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
      assertThat(job.get("attempts").asInt()).as("the handed-back run did not count").isEqualTo(1);
    }
  }

  private ConfigurableApplicationContext start() {
    return new SpringApplicationBuilder(ModelpressApplication.class)
        .properties(
            "server.port=0",
            "modelpress.embedded-postgres.data-dir=" + data.resolve("postgres"),
            "modelpress.storage.filesystem.root=" + data.resolve("artifacts"),
            "modelpress.uploads.spool-dir=" + data.resolve("spool"),
            "modelpress.worker.work-dir=" + data.resolve("work"),
            "modelpress.worker.heartbeat=200ms",
            "modelpress.worker.poll-interval=500ms",
            "modelpress.security.bootstrap.key=" + Api.TEST_ADMIN_KEY,
            "modelpress.security.bootstrap.key-file=" + data.resolve("bootstrap-admin-key"))
        .run();
  }

  private static int port(ConfigurableApplicationContext context) {
    return Integer.parseInt(context.getEnvironment().getProperty("local.server.port"));
  }
}
