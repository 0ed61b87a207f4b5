package dev.modelpress.system;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.storage.FileSystemArtifactStore;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.LiveServiceTest;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.boot.test.web.server.LocalServerPort;
import tools.jackson.databind.JsonNode;

/**
 * What an operator scrapes and probes: Prometheus meters with plausible values after a real job,
 * readiness that follows the artifact store, and log lines that carry the job id.
 */
@LiveServiceTest
@ExtendWith(OutputCaptureExtension.class)
class ObservabilityTest {

  private static final Pattern SAMPLE = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[^}]*\\})? (\\S+)$");

  @LocalServerPort int port;
  @Autowired FileSystemArtifactStore store;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  @Test
  void prometheusExposesQueueJobStepTransferClaimWorkerAndWebhookMeters(CapturedOutput output) throws Exception {
    Path model = OnnxGraphBuilder.opset(13).input("x", 1, 64)
        .initializer("w", OnnxGraphBuilder.randomFloats(11, 64 * 64, 1f), 64, 64).matMul("x", "w", "y").output("y")
        .writeTo(tmp);
    long modelBytes = Files.size(model);
    Map<String, Double> before = scrape();
    String modelId = api.postFile("/v1/models", model).json().get("id").asString();
    String jobId = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","sparsity":0.5,"include":["w"]},{"type":"quantize","weights":{"bits":8}}]}"""
        .formatted(modelId)).json().get("id").asString();
    JsonNode job = api.awaitJob(jobId, Duration.ofSeconds(60));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    long artifactBytes = api.getBytes(job.get("artifacts").get(0).get("href").asString()).body().length;
    assertThat(artifactBytes).isPositive();

    // The queue gauge is read from the database at most every 5 seconds: scrape until it has moved.
    Map<String, Double> after = scrape();
    for (long deadline = System.nanoTime() + 15_000_000_000L;
        after.getOrDefault("modelpress_jobs_queue{state=\"SUCCEEDED\"}", 0.0) < 1 && System.nanoTime() < deadline; ) {
      Thread.sleep(250);
      after = scrape();
    }
    assertThat(after.get("modelpress_jobs_queue{state=\"SUCCEEDED\"}")).isGreaterThanOrEqualTo(1.0);
    assertThat(after).containsKeys("modelpress_jobs_queue{state=\"QUEUED\"}", "modelpress_jobs_queue{state=\"RUNNING\"}",
        "modelpress_jobs_queue{state=\"FAILED\"}", "modelpress_jobs_queue{state=\"CANCELLED\"}");
    assertThat(delta(before, after, "modelpress_jobs_duration_seconds_count{outcome=\"succeeded\"}")).isGreaterThanOrEqualTo(1);
    assertThat(after.get("modelpress_jobs_duration_seconds_sum{outcome=\"succeeded\"}")).isPositive();
    assertThat(delta(before, after, "modelpress_jobs_step_duration_seconds_count{type=\"prune\"}")).isGreaterThanOrEqualTo(1);
    assertThat(delta(before, after, "modelpress_jobs_step_duration_seconds_count{type=\"quantize\"}")).isGreaterThanOrEqualTo(1);
    assertThat(after.get("modelpress_jobs_step_duration_seconds_sum{type=\"quantize\"}")).isPositive();
    assertThat(delta(before, after, "modelpress_jobs_claim_latency_seconds_count")).isGreaterThanOrEqualTo(1);
    assertThat(delta(before, after, "modelpress_transfer_in_bytes_total{kind=\"model\"}")).isGreaterThanOrEqualTo(modelBytes);
    assertThat(delta(before, after, "modelpress_transfer_out_bytes_total{kind=\"artifact\"}")).isGreaterThanOrEqualTo(artifactBytes);
    assertThat(after.get("modelpress_workers_concurrency")).isEqualTo(1.0);
    assertThat(after.get("modelpress_workers_utilization")).isBetween(0.0, 1.0);
    assertThat(after.get("modelpress_workers_running")).isBetween(0.0, 1.0);
    assertThat(after).containsKeys("modelpress_webhooks_deliveries_total{outcome=\"success\"}",
        "modelpress_webhooks_deliveries_total{outcome=\"http_error\"}",
        "modelpress_webhooks_deliveries_total{outcome=\"network_error\"}");

    // The worker's log lines carry the job id.
    assertThat(output.getOut()).containsPattern("\\[job=" + jobId + "\\].*Running job " + jobId);
  }

  @Test
  void readinessIsDownWhileTheArtifactStoreIsUnavailableAndLivenessStaysUp() throws Exception {
    Api.Response ready = api.get("/actuator/health/readiness");
    assertThat(ready.status()).as(ready.body()).isEqualTo(200);
    assertThat(ready.json().get("components").get("artifactStore").get("status").asString()).isEqualTo("UP");
    assertThat(ready.json().get("components").get("db").get("status").asString()).isEqualTo("UP");

    Path root = store.root();
    Path moved = root.resolveSibling(root.getFileName() + "-unmounted");
    Files.move(root, moved);
    Files.writeString(root, "the volume is gone");
    try {
      Api.Response down = api.get("/actuator/health/readiness");
      assertThat(down.status()).as(down.body()).isEqualTo(503);
      assertThat(down.json().get("status").asString()).isEqualTo("DOWN");
      assertThat(down.json().get("components").get("artifactStore").get("status").asString()).isEqualTo("DOWN");
      assertThat(down.json().get("components").get("db").get("status").asString()).isEqualTo("UP");
      assertThat(api.get("/actuator/health/liveness").status()).isEqualTo(200);
    } finally {
      Files.delete(root);
      Files.move(moved, root);
    }
    assertThat(api.get("/actuator/health/readiness").status()).isEqualTo(200);
  }

  private static double delta(Map<String, Double> before, Map<String, Double> after, String key) {
    assertThat(after).containsKey(key);
    return after.get(key) - before.getOrDefault(key, 0.0);
  }

  /** Samples by name and labels, without the labels every meter carries. */
  private Map<String, Double> scrape() {
    Api.Response r = api.get("/actuator/prometheus");
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.header("Content-Type")).startsWith("text/plain");
    Map<String, Double> samples = new HashMap<>();
    for (String line : r.body().split("\n")) {
      Matcher m = SAMPLE.matcher(line);
      if (!line.startsWith("#") && m.matches()) {
        String labels = m.group(2) == null ? "" : m.group(2)
            .replaceAll(",?application=\"modelpress\"", "").replace("{,", "{");
        if (labels.equals("{}")) {
          labels = "";
        }
        samples.put(m.group(1) + labels, Double.parseDouble(m.group(3)));
      }
    }
    return samples;
  }
}
