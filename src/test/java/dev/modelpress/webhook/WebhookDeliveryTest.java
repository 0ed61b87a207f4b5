package dev.modelpress.webhook;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.LiveServiceTest;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.worker.JobWorkers;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntUnaryOperator;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Webhooks end to end: a real job ends, the outbox row written with it is delivered to an HTTP
 * receiver on 127.0.0.1, whose signature check uses only the documented recipe and secret; failed
 * attempts are retried with backoff and every attempt is recorded.
 */
@LiveServiceTest
class WebhookDeliveryTest {

  private static final JsonMapper JSON = JsonMapper.builder().build();

  /** What the receiver saw. */
  record Received(Map<String, List<String>> headers, byte[] body, long nanos) {
    String header(String name) {
      return headers.entrySet().stream().filter(e -> e.getKey().equalsIgnoreCase(name))
          .map(e -> e.getValue().getFirst()).findFirst().orElse(null);
    }
  }

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;
  @Autowired MeterRegistry meters;
  @Autowired JobWorkers workers;
  @TempDir Path tmp;
  Api api;
  HttpServer receiver;
  final List<Received> received = Collections.synchronizedList(new ArrayList<>());
  final AtomicInteger calls = new AtomicInteger();
  volatile IntUnaryOperator answer = n -> 204; // status for the n-th call (1-based)

  @BeforeEach
  void setUp() throws Exception {
    api = new Api(port);
    receiver = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    receiver.createContext("/hook", exchange -> {
      byte[] body = exchange.getRequestBody().readAllBytes();
      received.add(new Received(Map.copyOf(exchange.getRequestHeaders()), body, System.nanoTime()));
      exchange.sendResponseHeaders(answer.applyAsInt(calls.incrementAndGet()), -1);
      exchange.close();
    });
    receiver.start();
  }

  @AfterEach
  void tearDown() {
    receiver.stop(0);
  }

  private String hook() {
    return "http://127.0.0.1:" + receiver.getAddress().getPort() + "/hook";
  }

  @Test
  void signedWebhookIsRetriedAfterA500AndEveryAttemptIsRecorded() throws Exception {
    answer = n -> n == 1 ? 500 : 204;
    double httpErrorsBefore = counter("http_error");
    double successesBefore = counter("success");
    Path model = smallModel();
    String modelId = api.postFile("/v1/models", model).json().get("id").asString();
    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"quantize","weights":{"bits":8}}],"callbackUrl":"%s"}"""
        .formatted(modelId, hook()));
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    assertThat(submitted.json().get("callbackUrl").asString()).isEqualTo(hook());
    String jobId = submitted.json().get("id").asString();
    JsonNode job = api.awaitJob(jobId, Duration.ofSeconds(60));
    assertThat(job.get("state").asString()).isEqualTo("SUCCEEDED");

    awaitCalls(2, Duration.ofSeconds(20));
    Received first = received.get(0);
    Received second = received.get(1);
    // The receiver's check, written from docs/webhooks.md only.
    for (Received r : List.of(first, second)) {
      assertThat(r.header("Content-Type")).isEqualTo("application/json");
      assertThat(verify(r, LiveServiceTest.SECRET)).as("signature verifies").isTrue();
      assertThat(Math.abs(Long.parseLong(r.header("webhook-timestamp")) - Instant.now().getEpochSecond()))
          .isLessThanOrEqualTo(60);
    }
    assertThat(verify(first, "whsec_" + Base64.getEncoder().encodeToString(new byte[32]))).isFalse();
    assertThat(second.header("webhook-id")).as("the same id on every attempt").isEqualTo(first.header("webhook-id"));
    assertThat(second.body()).as("the same bytes on every attempt").isEqualTo(first.body());
    assertThat(Duration.ofNanos(second.nanos() - first.nanos())).as("backoff").isGreaterThanOrEqualTo(Duration.ofMillis(300));

    JsonNode payload = JSON.readTree(first.body());
    assertThat(payload.get("type").asString()).isEqualTo("job.succeeded");
    JsonNode data = payload.get("data");
    assertThat(data.get("id").asString()).isEqualTo(jobId);
    assertThat(data.get("state").asString()).isEqualTo("SUCCEEDED");
    assertThat(data.get("report").get("bytesBefore").asLong()).isEqualTo(Files.size(model));
    assertThat(data.get("report").get("bytesAfter").asLong()).isEqualTo(job.get("report").get("bytesAfter").asLong());
    JsonNode artifact = data.get("artifacts").get(0);
    assertThat(artifact.get("name").asString()).isEqualTo("model.onnx");
    assertThat(artifact.get("sha256").asString()).isEqualTo(job.get("artifacts").get(0).get("sha256").asString());
    // The link works and serves those bytes.
    assertThat(sha256(api.getBytes(artifact.get("href").asString()).body())).isEqualTo(artifact.get("sha256").asString());

    JsonNode deliveries = awaitDeliveries(jobId, "DELIVERED");
    assertThat(deliveries.get("webhookId").asString()).isEqualTo(first.header("webhook-id"));
    assertThat(deliveries.get("eventType").asString()).isEqualTo("job.succeeded");
    assertThat(deliveries.get("attempts").asInt()).isEqualTo(2);
    JsonNode attempts = deliveries.get("deliveries");
    assertThat(attempts.size()).isEqualTo(2);
    assertThat(attempts.get(0).get("attempt").asInt()).isEqualTo(1);
    assertThat(attempts.get(0).get("statusCode").asInt()).isEqualTo(500);
    assertThat(attempts.get(0).get("outcome").asString()).isEqualTo("http_error");
    assertThat(attempts.get(0).get("error").asString()).contains("500");
    assertThat(attempts.get(1).get("statusCode").asInt()).isEqualTo(204);
    assertThat(attempts.get(1).get("outcome").asString()).isEqualTo("success");
    assertThat(attempts.get(1).get("durationMs").asLong()).isBetween(0L, 5000L);
    assertThat(counter("http_error") - httpErrorsBefore).isEqualTo(1);
    assertThat(counter("success") - successesBefore).isEqualTo(1);
    Thread.sleep(1000);
    assertThat(calls.get()).as("no delivery after success").isEqualTo(2);
  }

  @Test
  void aWebhookThatKeepsFailingIsGivenUpAfterMaxAttempts() throws Exception {
    answer = n -> 503;
    double exhaustedBefore = meters.counter("modelpress.webhooks.exhausted").count();
    String modelId = api.postFile("/v1/models", smallModel()).json().get("id").asString();
    String jobId = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","sparsity":0.5}],"callbackUrl":"%s"}"""
        .formatted(modelId, hook())).json().get("id").asString();
    api.awaitJob(jobId, Duration.ofSeconds(60));
    JsonNode deliveries = awaitDeliveries(jobId, "FAILED");
    assertThat(deliveries.get("attempts").asInt()).isEqualTo(3);
    assertThat(deliveries.get("deliveries").size()).isEqualTo(3);
    assertThat(deliveries.get("nextAttemptAt")).isNull();
    for (JsonNode d : deliveries.get("deliveries")) {
      assertThat(d.get("statusCode").asInt()).isEqualTo(503);
    }
    assertThat(calls.get()).isEqualTo(3);
    assertThat(meters.counter("modelpress.webhooks.exhausted").count() - exhaustedBefore).isEqualTo(1);
  }

  @Test
  void anUnreachableReceiverIsRecordedAsANetworkError() throws Exception {
    receiver.stop(0); // nothing listens on that port any more
    String modelId = api.postFile("/v1/models", smallModel()).json().get("id").asString();
    String jobId = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","sparsity":0.5}],"callbackUrl":"%s"}"""
        .formatted(modelId, hook())).json().get("id").asString();
    api.awaitJob(jobId, Duration.ofSeconds(60));
    JsonNode deliveries = awaitDeliveries(jobId, "FAILED");
    JsonNode first = deliveries.get("deliveries").get(0);
    assertThat(first.get("statusCode")).isNull();
    assertThat(first.get("outcome").asString()).isEqualTo("network_error");
    assertThat(first.get("error").asString()).containsIgnoringCase("connect");
  }

  @Test
  void cancellingAQueuedJobSendsAJobCancelledWebhook() throws Exception {
    String modelId = api.postFile("/v1/models", smallModel()).json().get("id").asString();
    workers.stop();
    String jobId;
    try {
      jobId = api.postJson("/v1/jobs", """
          {"modelId":"%s","steps":[{"type":"prune","sparsity":0.5}],"callbackUrl":"%s"}"""
          .formatted(modelId, hook())).json().get("id").asString();
      assertThat(api.postJson("/v1/jobs/" + jobId + "/cancel", "").status()).isEqualTo(202);
    } finally {
      workers.start();
    }
    awaitCalls(1, Duration.ofSeconds(20));
    JsonNode payload = JSON.readTree(received.getFirst().body());
    assertThat(payload.get("type").asString()).isEqualTo("job.cancelled");
    assertThat(payload.get("data").get("state").asString()).isEqualTo("CANCELLED");
    assertThat(payload.get("data").get("artifacts").size()).isZero();
    assertThat(verify(received.getFirst(), LiveServiceTest.SECRET)).isTrue();
  }

  @Test
  void jobsWithoutACallbackQueueNoWebhook() throws Exception {
    String modelId = api.postFile("/v1/models", smallModel()).json().get("id").asString();
    String jobId = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","sparsity":0.5}]}""".formatted(modelId)).json().get("id").asString();
    api.awaitJob(jobId, Duration.ofSeconds(60));
    JsonNode deliveries = api.get("/v1/jobs/" + jobId + "/deliveries").json();
    assertThat(deliveries.get("deliveries").size()).isZero();
    assertThat(deliveries.get("webhookId")).isNull();
    assertThat(jdbc.sql("select count(*) from webhook_outbox where job_id = ?").param(UUID.fromString(jobId))
        .query(Integer.class).single()).isZero();
    assertThat(api.get("/v1/jobs/" + UUID.randomUUID() + "/deliveries").status()).isEqualTo(404);
  }

  @Test
  void callbackUrlsThatAreNotHttpAreRejectedWith422() throws Exception {
    String modelId = api.postFile("/v1/models", smallModel()).json().get("id").asString();
    for (String url : List.of("ftp://127.0.0.1/hook", "not a url", "/relative/hook", "http://user:pw@127.0.0.1/hook",
        "file:///etc/passwd")) {
      Api.Response r = api.postJson("/v1/jobs", """
          {"modelId":"%s","steps":[{"type":"prune","sparsity":0.5}],"callbackUrl":"%s"}""".formatted(modelId, url));
      assertThat(r.status()).as(url + ": " + r.body()).isEqualTo(422);
      assertThat(r.problemType()).isEqualTo("https://modelpress.dev/problems/validation-failed");
      assertThat(r.json().get("errors").get(0).get("field").asString()).isEqualTo("callbackUrl");
    }
  }

  /** The receiver's verification, as docs/webhooks.md tells it, with nothing from the service's code. */
  static boolean verify(Received r, String secret) throws Exception {
    byte[] key = Base64.getDecoder().decode(secret.substring("whsec_".length()));
    Mac mac = Mac.getInstance("HmacSHA256");
    mac.init(new SecretKeySpec(key, "HmacSHA256"));
    mac.update((r.header("webhook-id") + "." + r.header("webhook-timestamp") + ".").getBytes(StandardCharsets.UTF_8));
    byte[] expected = mac.doFinal(r.body());
    for (String sig : r.header("webhook-signature").split(" ")) {
      if (sig.startsWith("v1,") && MessageDigest.isEqual(expected, Base64.getDecoder().decode(sig.substring(3)))) {
        return true;
      }
    }
    return false;
  }

  private Path smallModel() {
    return OnnxGraphBuilder.opset(13).input("x", 1, 32)
        .initializer("w", OnnxGraphBuilder.randomFloats(7, 32 * 32, 1f), 32, 32).matMul("x", "w", "y").output("y")
        .writeTo(tmp);
  }

  private double counter(String outcome) {
    return meters.counter("modelpress.webhooks.deliveries", "outcome", outcome).count();
  }

  private void awaitCalls(int n, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (received.size() < n && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertThat(received).as("webhook calls").hasSizeGreaterThanOrEqualTo(n);
  }

  private JsonNode awaitDeliveries(String jobId, String state) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    JsonNode d = null;
    while (System.nanoTime() < deadline) {
      d = api.get("/v1/jobs/" + jobId + "/deliveries").json();
      if (d.get("state") != null && d.get("state").asString().equals(state)) {
        return d;
      }
      Thread.sleep(50);
    }
    throw new AssertionError("webhook of " + jobId + " not " + state + ": " + d);
  }

  private static String sha256(byte[] bytes) throws Exception {
    return java.util.HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
  }
}
