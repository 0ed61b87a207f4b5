package dev.modelpress.job;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.testing.Api;
import dev.modelpress.testing.LiveServiceTest;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.SseClient;
import dev.modelpress.worker.JobWorkers;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.web.server.LocalServerPort;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code GET /v1/jobs/{id}/events} read with a plain HTTP client while a real worker runs the job:
 * the events arrive in order, ids increase, progress never goes back, the stream ends with the
 * terminal state, and Last-Event-ID resumes without repeating what was seen.
 */
@LiveServiceTest
class JobEventsTest {

  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final Duration WAIT = Duration.ofSeconds(60);

  @LocalServerPort int port;
  @Autowired JobWorkers workers;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  /** 12 tensors of 256x256 and six steps: long enough for several progress saves at 50 ms. */
  static String uploadChain(Api api, Path dir) {
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(13).input("x", 1, 256);
    String in = "x";
    for (int i = 0; i < 12; i++) {
      b.initializer("w" + i, OnnxGraphBuilder.randomFloats(100 + i, 256 * 256, 0.1f), 256, 256)
          .matMul(in, "w" + i, "h" + i);
      in = "h" + i;
    }
    Path model = b.output(in).writeTo(dir);
    Api.Response r = api.postFile("/v1/models?name=chain", model);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    return r.json().get("id").asString();
  }

  static final String SIX_STEPS = """
      [{"type":"prune","sparsity":0.1},{"type":"prune","sparsity":0.2},{"type":"prune","sparsity":0.3},
       {"type":"prune","sparsity":0.4},{"type":"prune","sparsity":0.5},{"type":"quantize","weights":{"bits":8}}]""";

  @Test
  void streamsQueuedRunningProgressAndSucceededInOrderThenCloses() throws Exception {
    String modelId = uploadChain(api, tmp);
    workers.stop(); // so the stream sees the job while it is still queued
    String jobId;
    List<SseClient.Event> events = new ArrayList<>();
    try {
      jobId = api.postJson("/v1/jobs", "{\"modelId\":\"" + modelId + "\",\"steps\":" + SIX_STEPS + "}")
          .json().get("id").asString();
      try (SseClient sse = SseClient.open(api.base() + "/v1/jobs/" + jobId + "/events")) {
        assertThat(sse.status()).isEqualTo(200);
        assertThat(sse.header("Content-Type")).startsWith("text/event-stream");
        SseClient.Event first = sse.next(Duration.ofSeconds(10));
        events.add(first);
        assertThat(first.name()).isEqualTo("state");
        assertThat(JSON.readTree(first.data()).get("state").asString()).isEqualTo("QUEUED");
        // An idle stream gets keepalive comments (every second here).
        long waitUntil = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (sse.comments().isEmpty() && System.nanoTime() < waitUntil) {
          Thread.sleep(50);
        }
        assertThat(sse.comments()).contains("keepalive");
        workers.start();
        events.addAll(sse.untilEnd(WAIT));
      }
    } finally {
      workers.start();
    }

    List<String> sequence = new ArrayList<>();
    long lastId = -1;
    double lastFraction = -1;
    int progressEvents = 0;
    for (SseClient.Event e : events) {
      long id = Long.parseLong(e.id());
      assertThat(id).as("event ids increase: %s", events).isGreaterThan(lastId);
      lastId = id;
      JsonNode data = JSON.readTree(e.data());
      JsonNode progress = e.name().equals("progress") ? data : data.get("progress");
      if (e.name().equals("state")) {
        sequence.add(data.get("state").asString());
      } else {
        assertThat(e.name()).isEqualTo("progress");
        progressEvents++;
        if (!sequence.getLast().equals("progress")) {
          sequence.add("progress");
        }
      }
      if (progress != null && progress.get("fraction") != null) {
        double fraction = progress.get("fraction").asDouble();
        assertThat(fraction).as("fraction never decreases: %s", events).isGreaterThanOrEqualTo(lastFraction)
            .isBetween(0.0, 1.0);
        lastFraction = fraction;
        assertThat(progress.get("step").asInt()).isBetween(1, 6);
      }
    }
    System.out.printf("SSE: %d events (%d progress) for job %s: %s%n", events.size(), progressEvents, jobId, sequence);
    assertThat(sequence).containsExactly("QUEUED", "RUNNING", "progress", "SUCCEEDED");
    assertThat(progressEvents).isGreaterThanOrEqualTo(2);
    assertThat(lastFraction).isEqualTo(1.0);
    JsonNode last = JSON.readTree(events.getLast().data());
    JsonNode polled = api.get("/v1/jobs/" + jobId).json();
    assertThat(last.get("artifacts").findValuesAsString("name")).contains("model.onnx", "report.json");
    assertThat(last.get("artifacts")).isEqualTo(polled.get("artifacts"));
    assertThat(last.get("report").get("bytesAfter").asLong()).isEqualTo(polled.get("report").get("bytesAfter").asLong());
  }

  @Test
  void lastEventIdResumesAfterWhatWasSeen() throws Exception {
    String modelId = uploadChain(api, tmp);
    String jobId = api.postJson("/v1/jobs", "{\"modelId\":\"" + modelId + "\",\"steps\":[{\"type\":\"prune\",\"sparsity\":0.5}]}")
        .json().get("id").asString();
    api.awaitJob(jobId, WAIT);
    String url = api.base() + "/v1/jobs/" + jobId + "/events";

    List<SseClient.Event> fresh;
    try (SseClient sse = SseClient.open(url)) {
      fresh = sse.untilEnd(Duration.ofSeconds(10));
    }
    assertThat(fresh).hasSize(1);
    assertThat(fresh.getFirst().name()).isEqualTo("state");
    assertThat(JSON.readTree(fresh.getFirst().data()).get("state").asString()).isEqualTo("SUCCEEDED");
    long finalId = Long.parseLong(fresh.getFirst().id());
    // Claimed (QUEUED->RUNNING), at least one progress save, succeeded: three changes at least.
    assertThat(finalId).isGreaterThanOrEqualTo(3);

    try (SseClient sse = SseClient.open(url, "Last-Event-ID", Long.toString(finalId))) {
      assertThat(sse.untilEnd(Duration.ofSeconds(10))).as("everything was seen").isEmpty();
    }
    try (SseClient sse = SseClient.open(url, "Last-Event-ID", Long.toString(finalId - 1))) {
      List<SseClient.Event> rest = sse.untilEnd(Duration.ofSeconds(10));
      assertThat(rest).hasSize(1);
      assertThat(rest.getFirst().id()).isEqualTo(Long.toString(finalId));
    }
  }

  @Test
  void unknownJobIsA404ProblemNotAStream() throws Exception {
    try (SseClient sse = SseClient.open(api.base() + "/v1/jobs/" + UUID.randomUUID() + "/events")) {
      assertThat(sse.status()).isEqualTo(404);
      assertThat(sse.header("Content-Type")).startsWith("application/problem+json");
    }
    Api.Response r = api.get("/v1/jobs/" + UUID.randomUUID() + "/events");
    assertThat(r.status()).isEqualTo(404);
    assertThat(r.problemType()).isEqualTo("https://modelpress.dev/problems/not-found");
  }

  @Test
  void aLastEventIdThatIsNoNumberIsA400Problem() throws Exception {
    String modelId = uploadChain(api, tmp);
    String jobId = api.postJson("/v1/jobs", "{\"modelId\":\"" + modelId + "\",\"steps\":[{\"type\":\"prune\",\"sparsity\":0.5}]}")
        .json().get("id").asString();
    try (SseClient sse = SseClient.open(api.base() + "/v1/jobs/" + jobId + "/events", "Last-Event-ID", "abc")) {
      assertThat(sse.status()).isEqualTo(400);
      assertThat(sse.header("Content-Type")).startsWith("application/problem+json");
    }
    api.awaitJob(jobId, WAIT);
  }
}
