package dev.modelpress.report;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.modelpress.testing.Api;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code GET /v1/jobs/{id}/report} on real jobs run by a real worker: JSON and HTML by Accept,
 * problems for unknown jobs, jobs without a report and unsupported types; provenance that
 * reproduces the artifact byte for byte; and a slower result flagged from real ONNX Runtime runs.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.concurrency=1",
        "modelpress.worker.poll-interval=500ms"})
@ActiveProfiles("test")
class ReportApiTest {

  private static final Duration JOB_TIMEOUT = Duration.ofMinutes(3);
  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final String STEPS = """
      [{"type":"prune","sparsity":0.25,"scope":"layer"},
       {"type":"quantize","weights":{"bits":8,"symmetric":true,"granularity":"channel"}}]""";

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  @Test
  void classifierJobReportIsTheStoredJsonOrAnEscapedHtmlPage() throws Exception {
    Path model = ReportFixtures.classifier(tmp);
    Api.Response uploaded = api.postFile("/v1/models", model);
    Api.Response dataset = api.postFile("/v1/datasets", ReportFixtures.labelledDataset(model, tmp, 400));
    JsonNode job = run(uploaded.json().get("id").asString(), dataset.json().get("id").asString(), STEPS);

    // JSON by default: the stored artifact's bytes, unchanged.
    HttpResponse<byte[]> json = api.getBytes("/v1/jobs/" + id(job) + "/report");
    assertThat(json.statusCode()).isEqualTo(200);
    assertThat(json.headers().firstValue("Content-Type").orElseThrow()).startsWith("application/json");
    assertThat(json.headers().firstValue("Vary").orElseThrow()).isEqualTo("Accept");
    assertThat(json.body()).isEqualTo(api.getBytes(artifact(job, "report.json").get("href").asString()).body());
    JsonNode report = JSON.readTree(json.body());

    JsonNode size = report.get("size");
    assertThat(size.get("bytesBefore").asLong()).isEqualTo(uploaded.json().get("bytes").asLong());
    assertThat(size.get("parametersBefore").asLong())
        .isEqualTo((long) ReportFixtures.FEATURES * ReportFixtures.HIDDEN + ReportFixtures.HIDDEN
            + (long) ReportFixtures.HIDDEN * ReportFixtures.CLASSES);
    assertThat(size.get("bitsPerWeightBefore").asDouble()).isBetween(32.0, 40.0);
    // int8 weights plus one fp32 scale and int8 zero point per output channel.
    assertThat(size.get("compressedTensorBitsPerWeight").asDouble()).isBetween(8.0, 9.5);
    assertThat(size.get("compressedTensors").asInt()).isEqualTo(2);
    JsonNode layers = report.get("layers");
    assertThat(layers.size()).isEqualTo(2);
    assertThat(layers.get(0).get("name").asString()).isEqualTo(ReportFixtures.EVIL);
    assertThat(layers.get(0).get("sparsityAfter").asDouble()).isCloseTo(0.25, within(0.01));
    assertThat(layers.get(0).get("sqnrDb").asDouble()).isGreaterThan(30);
    assertThat(layers.get(0).get("steps").size()).isEqualTo(2);

    JsonNode classifier = report.get("fidelity").get("outputs").get(0).get("classifier");
    assertThat(classifier.get("originalAccuracy").asDouble()).isCloseTo(0.875, within(0.001));
    long support = 0;
    for (JsonNode k : classifier.get("perClass")) {
      support += k.get("support").asLong();
    }
    assertThat(support).isEqualTo(256); // evaluationSamples defaults to 256 of the 400
    assertThat(classifier.get("originalConfusion").size()).isEqualTo(ReportFixtures.CLASSES);
    assertThat(report.get("fidelity").get("latencyComparison").get("pairs").asInt()).isEqualTo(50);

    JsonNode provenance = report.get("provenance");
    assertThat(provenance.get("inputs").get("model").get("sha256").asString())
        .isEqualTo(uploaded.json().get("sha256").asString());
    assertThat(provenance.get("inputs").get("evaluationDataset").get("sha256").asString())
        .isEqualTo(dataset.json().get("sha256").asString());
    assertThat(provenance.get("inputs").get("specSha256").asString()).matches("[0-9a-f]{64}");
    assertThat(provenance.get("output").get("sha256").asString())
        .isEqualTo(artifact(job, "model.onnx").get("sha256").asString());
    assertThat(provenance.get("onnxruntime").asString()).isEqualTo("1.28.0");
    assertThat(provenance.get("nd4j").asString()).isEqualTo("1.0.0-M2.1");
    assertThat(provenance.get("protobuf").asString()).matches("\\d+\\.\\d+\\.\\d+");
    assertThat(provenance.get("seeds").isEmpty()).isTrue();

    // HTML for a browser's Accept, with the injected tensor name shown as text.
    HttpResponse<byte[]> html = api.getBytes("/v1/jobs/" + id(job) + "/report", "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
    assertThat(html.statusCode()).isEqualTo(200);
    assertThat(html.headers().firstValue("Content-Type").orElseThrow()).isEqualTo("text/html;charset=UTF-8");
    assertThat(html.headers().firstValue("Content-Security-Policy").orElseThrow()).startsWith("default-src 'none'");
    String page = new String(html.body(), StandardCharsets.UTF_8);
    assertThat(page).doesNotContainIgnoringCase("<script").contains("&lt;script&gt;alert(1)&lt;/script&gt;");
    assertThat(page).contains("id=\"layers-table\"", "id=\"fidelity-table\"", "id=\"speed-table\"",
        uploaded.json().get("sha256").asString());

    Api.Response csv = problem("/v1/jobs/" + id(job) + "/report", "text/csv");
    assertThat(csv.status()).isEqualTo(406);
    assertThat(csv.problemType()).isEqualTo("https://modelpress.dev/problems/not-acceptable");
    Api.Response unknown = problem("/v1/jobs/" + UUID.randomUUID() + "/report", "text/html");
    assertThat(unknown.status()).isEqualTo(404);
    assertThat(unknown.problemType()).isEqualTo("https://modelpress.dev/problems/not-found");
  }

  @Test
  void jobsThatHaveNotSucceededAnswer409NoReport() throws Exception {
    Path model = ReportFixtures.classifier(tmp);
    String modelId = api.postFile("/v1/models", model).json().get("id").asString();
    UUID running = insertJob(modelId, "RUNNING");
    UUID failed = insertJob(modelId, "FAILED");

    Api.Response r = problem("/v1/jobs/" + running + "/report", null);
    assertThat(r.status()).isEqualTo(409);
    assertThat(r.problemType()).isEqualTo("https://modelpress.dev/problems/no-report");
    assertThat(r.json().get("detail").asString()).contains("is RUNNING", "written when it succeeds");
    Api.Response f = problem("/v1/jobs/" + failed + "/report", "text/html");
    assertThat(f.status()).isEqualTo(409);
    assertThat(f.json().get("detail").asString()).contains("is FAILED and has no report");
  }

  @Test
  void resubmittingTheReproduceRequestFromProvenanceGivesAByteIdenticalModel() throws Exception {
    Path model = ReportFixtures.classifier(tmp);
    String modelId = api.postFile("/v1/models", model).json().get("id").asString();
    String datasetId = api.postFile("/v1/datasets", ReportFixtures.labelledDataset(model, tmp, 64))
        .json().get("id").asString();
    JsonNode first = run(modelId, datasetId, STEPS);
    JsonNode firstReport = JSON.readTree(api.getBytes("/v1/jobs/" + id(first) + "/report").body());

    Api.Response again = api.postJson("/v1/jobs", firstReport.get("provenance").get("reproduce").toString());
    assertThat(again.status()).as(again.body()).isEqualTo(202);
    JsonNode second = api.awaitJob(again.json().get("id").asString(), JOB_TIMEOUT);
    assertThat(second.get("state").asString()).as(second.toString()).isEqualTo("SUCCEEDED");
    JsonNode secondReport = JSON.readTree(api.getBytes("/v1/jobs/" + id(second) + "/report").body());

    String sha = artifact(first, "model.onnx").get("sha256").asString();
    assertThat(artifact(second, "model.onnx").get("sha256").asString()).isEqualTo(sha);
    assertThat(secondReport.get("provenance").get("output").get("sha256").asString()).isEqualTo(sha);
    assertThat(secondReport.get("provenance").get("inputs").get("specSha256").asString())
        .isEqualTo(firstReport.get("provenance").get("inputs").get("specSha256").asString());
    assertThat(api.getBytes(artifact(second, "model.onnx").get("href").asString()).body())
        .isEqualTo(api.getBytes(artifact(first, "model.onnx").get("href").asString()).body());
  }

  @Test
  void weightOnlyInt8OfAMatMulChainRunsFasterInOnnxRuntimeAndIsNotFlagged() throws Exception {
    // ONNX Runtime fuses DequantizeLinear + MatMul into an integer kernel: the int8 chain is faster
    // here, and the report must not cry wolf (the deliberately slower model is in ReportSpeedWarningTest).
    Path model = ReportFixtures.matMulChain(tmp, 512, 6);
    String modelId = api.postFile("/v1/models", model).json().get("id").asString();
    String datasetId = api.postFile("/v1/datasets", ReportFixtures.floatDataset(tmp, "chain.npz", 8, 512))
        .json().get("id").asString();
    JsonNode job = run(modelId, datasetId,
        "[{\"type\":\"quantize\",\"weights\":{\"bits\":8,\"symmetric\":true,\"granularity\":\"channel\"}}]");

    JsonNode fidelity = JSON.readTree(api.getBytes("/v1/jobs/" + id(job) + "/report").body()).get("fidelity");
    System.out.printf("matmul chain int8: original p50 %.3f ms, int8 p50 %.3f ms, speedup %.2f, ratio %s%n",
        fidelity.get("original").get("p50Millis").asDouble(), fidelity.get("candidate").get("p50Millis").asDouble(),
        fidelity.get("speedup").asDouble(), fidelity.get("latencyComparison"));
    assertThat(fidelity.get("slower").asBoolean()).isFalse();
    assertThat(fidelity.get("latencyComparison").get("verdict").asString()).isEqualTo("FASTER");
    assertThat(fidelity.get("speedup").asDouble()).isGreaterThan(1.2);
    assertThat(fidelity.get("outputs").get(0).get("meanCosine").asDouble()).isGreaterThan(0.999);

    String page = new String(api.getBytes("/v1/jobs/" + id(job) + "/report", "Accept", "text/html").body(),
        StandardCharsets.UTF_8);
    assertThat(page).doesNotContain("id=\"slower-warning\"").contains("Faster: paired time ratio");
  }

  private JsonNode run(String modelId, String datasetId, String steps) {
    Api.Response submitted = api.postJson("/v1/jobs",
        "{\"modelId\":\"" + modelId + "\",\"evaluationDatasetId\":\"" + datasetId + "\",\"steps\":" + steps + "}");
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    JsonNode job = api.awaitJob(submitted.json().get("id").asString(), JOB_TIMEOUT);
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    return job;
  }

  private Api.Response problem(String path, String accept) {
    HttpResponse<byte[]> r = accept == null ? api.getBytes(path) : api.getBytes(path, "Accept", accept);
    assertThat(r.headers().firstValue("Content-Type").orElseThrow()).isEqualTo("application/problem+json");
    return new Api.Response(r.statusCode(), r.headers(), new String(r.body(), StandardCharsets.UTF_8),
        JSON.readTree(r.body()));
  }

  private UUID insertJob(String modelId, String state) {
    UUID id = UUID.randomUUID();
    OffsetDateTime now = OffsetDateTime.now(ZoneOffset.UTC);
    // A job another (live) worker holds, or one that already failed: no worker here touches either.
    jdbc.sql("""
            insert into jobs (id, owner, state, model_id, spec, attempts, max_attempts, lease_owner, lease_expires_at,
                              created_at, started_at, updated_at)
            values (?, 'default', ?, ?, cast(? as jsonb), 1, 3, ?, ?, ?, ?, ?)""")
        .params(id, state, UUID.fromString(modelId), "{\"steps\":[{\"type\":\"prune\",\"sparsity\":0.5}],\"evaluationSamples\":16}",
            state.equals("RUNNING") ? "elsewhere:1:w0" : null, state.equals("RUNNING") ? now.plusHours(1) : null,
            now, now, now)
        .update();
    return id;
  }

  private static String id(JsonNode job) {
    return job.get("id").asString();
  }

  private static JsonNode artifact(JsonNode job, String name) {
    for (JsonNode a : job.get("artifacts")) {
      if (a.get("name").asString().equals(name)) {
        return a;
      }
    }
    throw new AssertionError("no artifact " + name + " in " + job);
  }
}
