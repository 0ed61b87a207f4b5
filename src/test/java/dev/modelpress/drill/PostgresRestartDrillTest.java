package dev.modelpress.drill;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.testing.Api;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.ServiceProcess;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * The database drill: PostgreSQL is stopped while a service process (API and workers) has jobs
 * running and queued, and started again on the same data directory and port. Nobody touches the
 * service: its pool reconnects, its workers and its LISTEN connection carry on, and every job
 * finishes.
 */
@Tag("drill")
class PostgresRestartDrillTest {

  static final String QUANTIZE =
      "{\"type\":\"quantize\",\"weights\":{\"bits\":8,\"symmetric\":true,\"granularity\":\"channel\"}}";

  @TempDir Path dir;

  @Test
  void serviceCarriesOnAfterPostgresRestartsUnderRunningJobs() throws Exception {
    try (DrillCluster cluster = new DrillCluster(dir)) {
      // A long poll interval: a job that starts promptly after the restart was woken by NOTIFY,
      // which proves the LISTEN connection came back.
      ServiceProcess service = cluster.start("service", true, Map.of(
          "modelpress.worker.poll-interval", "30s",
          "modelpress.worker.concurrency", "2")).awaitReady(Duration.ofMinutes(4));
      Api api = new Api(service.port());
      String modelId = api.postFile("/v1/models", MiniLm.modelFile()).json().get("id").asString();
      String body = "{\"modelId\":\"" + modelId + "\",\"steps\":[" + QUANTIZE + "]}";
      List<String> jobIds = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        jobIds.add(api.postJson("/v1/jobs", body).json().get("id").asString());
      }
      api.awaitJob(jobIds.getFirst(), Duration.ofMinutes(2), "RUNNING");

      cluster.stopPostgres();
      Api.sleep(4_000);
      assertThat(api.get("/v1/jobs/" + jobIds.getFirst()).status()).as("API while the database is down")
          .isGreaterThanOrEqualTo(500);
      cluster.restartPostgres();
      long restarted = System.nanoTime();

      // Connections the pool held died with the server; the first requests may still meet one.
      // The service must be answering again on its own within seconds.
      for (Api.Response r; (r = api.get("/v1/jobs/" + jobIds.getFirst())).status() != 200; ) {
        assertThat((System.nanoTime() - restarted) / 1e9).as("seconds until the API answers again; last: %s", r.body())
            .isLessThan(30);
        Api.sleep(200);
      }
      double recoverySeconds = (System.nanoTime() - restarted) / 1e9;
      System.out.printf("DRILL API answering %.1f s after PostgreSQL restarted%n", recoverySeconds);

      for (String id : jobIds) {
        JsonNode job = api.awaitJob(id, Duration.ofMinutes(5));
        assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
      }
      assertThat(cluster.query("select count(*) as n from artifacts").getFirst().get("n")).isEqualTo(8L);

      long submitted = System.nanoTime();
      String late = api.postJson("/v1/jobs", body).json().get("id").asString();
      api.awaitJob(late, Duration.ofSeconds(25), "RUNNING", "SUCCEEDED");
      double startSeconds = (System.nanoTime() - submitted) / 1e9;
      assertThat(startSeconds).as("a new job starts by NOTIFY, not the 30 s poll").isLessThan(10);
      assertThat(api.awaitJob(late, Duration.ofMinutes(3)).get("state").asString()).isEqualTo("SUCCEEDED");
    }
  }
}
