package dev.modelpress.worker;

import static dev.modelpress.testing.OnnxGraphBuilder.intAttr;
import static dev.modelpress.testing.OnnxGraphBuilder.intsAttr;
import static dev.modelpress.testing.OnnxGraphBuilder.randomFloats;
import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.DeepCompressionArchive;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;

/**
 * Structured pruning, Deep Compression and the new step fields through the real service: HTTP,
 * PostgreSQL queue, worker, artifacts, checked again in ONNX Runtime.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.poll-interval=500ms"})
@ActiveProfiles("test")
class PruningJobsTest {

  private static final Duration TIMEOUT = Duration.ofMinutes(3);

  @LocalServerPort int port;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  /** x[1,16,32,32] -> Conv 64 -> Relu -> Conv 64 -> Relu -> MaxPool -> Conv 64 -> Relu -> GAP -> Flatten -> Gemm 10. */
  static ModelProto cnn() {
    return OnnxGraphBuilder.opset(13)
        .input("x", 1, 16, 32, 32)
        .initializer("c1.w", randomFloats(1, 64 * 16 * 9, 0.1f), 64, 16, 3, 3)
        .initializer("c1.b", randomFloats(2, 64, 0.1f), 64)
        .initializer("c2.w", randomFloats(3, 64 * 64 * 9, 0.05f), 64, 64, 3, 3)
        .initializer("c2.b", randomFloats(4, 64, 0.1f), 64)
        .initializer("c3.w", randomFloats(5, 64 * 64 * 9, 0.05f), 64, 64, 3, 3)
        .initializer("fc.w", randomFloats(6, 64 * 10, 0.1f), 64, 10)
        .initializer("fc.b", randomFloats(7, 10, 0.1f), 10)
        .conv("x", "c1.w", "c1.b", "h1", 1).relu("h1", "r1")
        .conv("r1", "c2.w", "c2.b", "h2", 1).relu("h2", "r2")
        .node("MaxPool", List.of("r2"), List.of("p2"), intsAttr("kernel_shape", 2, 2), intsAttr("strides", 2, 2))
        .conv("p2", "c3.w", null, "h3", 1).relu("h3", "r3")
        .node("GlobalAveragePool", List.of("r3"), List.of("g"))
        .node("Flatten", List.of("g"), List.of("f"), intAttr("axis", 1))
        .gemm("f", "fc.w", "fc.b", "y", false)
        .output("y")
        .build();
  }

  @Test
  void structuredPruningShrinksTheFileAndReportsMeasuredLatency() throws Exception {
    Path original = OnnxGraphBuilder.write(cnn(), tmp);
    String modelId = upload(original);
    JsonNode job = run("""
        {"modelId":"%s","steps":[{"type":"prune","method":"structured","sparsity":0.5,"criterion":"l2"}]}"""
        .formatted(modelId));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    assertThat(job.get("steps").get(0).get("unit").asString()).isEqualTo("channels");
    Path model = tmp.resolve("pruned.onnx");
    api.download(artifact(job, "model.onnx").get("href").asString(), model);
    ModelProto pruned = OnnxModels.read(model);
    assertThat(dims(pruned, "c1.w")).containsExactly(32L, 16L, 3L, 3L);
    assertThat(dims(pruned, "c2.w")).containsExactly(32L, 32L, 3L, 3L);
    assertThat(dims(pruned, "c3.w")).containsExactly(32L, 32L, 3L, 3L);
    assertThat(dims(pruned, "fc.w")).containsExactly(32L, 10L);
    assertThat(Files.size(model)).isLessThan(Files.size(original) * 3 / 10);
    try (OrtRunner ort = new OrtRunner(model)) {
      assertThat(ort.run("y", "x", randomFloats(8, 16 * 32 * 32, 1f), 1, 16, 32, 32)).hasSize(10);
    }

    JsonNode report = api.get(artifact(job, "report.json").get("href").asString()).json();
    JsonNode latency = report.get("latency");
    assertThat(latency.get("source").asString()).isEqualTo("synthetic batch");
    assertThat(latency.get("original").get("runs").asInt()).isGreaterThanOrEqualTo(50);
    double before = latency.get("original").get("p50Millis").asDouble();
    double after = latency.get("candidate").get("p50Millis").asDouble();
    System.out.printf("structured 50%% CNN via the service: file %d -> %d B, ORT p50 %.3f -> %.3f ms (speedup %.2fx)%n",
        Files.size(original), Files.size(model), before, after, latency.get("speedup").asDouble());
    // Convolution FLOPs drop to about a quarter (half the filters of half the channels).
    assertThat(after).isLessThan(before);
    JsonNode details = report.get("stepReports").get(0).get("details");
    assertThat(details.get("layers").size()).isEqualTo(3);
    assertThat(details.get("modelParametersAfter").asLong()).isLessThan(details.get("modelParametersBefore").asLong() / 3);
    assertThat(report.get("storage").get("gzipBytes").asLong()).isEqualTo(artifact(job, "model.onnx.gz").get("bytes").asLong());
  }

  @Test
  void deepCompressionJobStoresAnArchiveAndTheModelDecodedFromIt() throws Exception {
    ModelProto mlp = OnnxGraphBuilder.opset(13)
        .input("x", 1, 128)
        .initializer("W1", randomFloats(1, 128 * 256, 0.1f), 128, 256)
        .initializer("W2", randomFloats(2, 256 * 10, 0.1f), 256, 10)
        .matMul("x", "W1", "h").relu("h", "r").matMul("r", "W2", "y")
        .output("y")
        .build();
    Path original = OnnxGraphBuilder.write(mlp, tmp);
    JsonNode job = run("""
        {"modelId":"%s","steps":[{"type":"prune","sparsity":0.9},{"type":"share","clusters":16}]}"""
        .formatted(upload(original)));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    Path archive = tmp.resolve("model.dc");
    Path model = tmp.resolve("decoded.onnx");
    Path gz = tmp.resolve("model.onnx.gz");
    api.download(artifact(job, "model.dc").get("href").asString(), archive);
    api.download(artifact(job, "model.onnx").get("href").asString(), model);
    api.download(artifact(job, "model.onnx.gz").get("href").asString(), gz);
    double ratio = (double) Files.size(original) / Files.size(archive);
    JsonNode dc = api.get(artifact(job, "report.json").get("href").asString()).json().get("deepCompression");
    System.out.printf("Deep Compression via the service: %d -> %d B (%.1fx); stage ratios %s%n", Files.size(original),
        Files.size(archive), ratio, dc.get("stageRatios"));
    assertThat(ratio).isGreaterThanOrEqualTo(10);
    assertThat(dc.get("archiveBytes").asLong()).isEqualTo(Files.size(archive));
    ModelProto decoded;
    try (InputStream in = Files.newInputStream(archive)) {
      decoded = DeepCompressionArchive.decode(in);
    }
    ModelProto served = OnnxModels.read(model);
    for (TensorProto t : decoded.getGraph().getInitializerList()) {
      float[] a = OnnxTensors.toFloats(t);
      float[] b = OnnxTensors.toFloats(served.getGraph().getInitializerList().stream()
          .filter(s -> s.getName().equals(t.getName())).findFirst().orElseThrow());
      assertThat(b).containsExactly(a);
    }
    try (InputStream in = new GZIPInputStream(Files.newInputStream(gz))) {
      assertThat(in.readAllBytes()).isEqualTo(Files.readAllBytes(model));
    }
    try (OrtRunner ort = new OrtRunner(model)) {
      assertThat(ort.run("y", "x", randomFloats(3, 128, 1f), 1, 128)).hasSize(10);
    }
  }

  @Test
  void residualStructuredPruningFailsTheJobWithTheReason() {
    ModelProto residual = OnnxGraphBuilder.opset(13)
        .input("x", 1, 4, 8, 8)
        .initializer("A", randomFloats(1, 8 * 4 * 9, 0.3f), 8, 4, 3, 3)
        .initializer("B", randomFloats(2, 8 * 8 * 9, 0.3f), 8, 8, 3, 3)
        .conv("x", "A", null, "a", 1)
        .conv("a", "B", null, "b", 1)
        .add("a", "b", "y")
        .output("y")
        .build();
    JsonNode job = run("""
        {"modelId":"%s","steps":[{"type":"prune","method":"structured","sparsity":0.5,"include":["A"]}]}"""
        .formatted(upload(OnnxGraphBuilder.write(residual, tmp))));
    assertThat(job.get("state").asString()).isEqualTo("FAILED");
    assertThat(job.get("error").get("detail").asString())
        .contains("structured pruning cannot remove channels of 'A'")
        .contains("residual branch keeps every channel");
  }

  @Test
  void newStepFieldsAreValidatedWithPreciseProblems() {
    String modelId = upload(OnnxGraphBuilder.write(cnn(), tmp));
    Api.Response nm = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","method":"nm","n":4,"m":4}]}""".formatted(modelId));
    assertThat(nm.status()).isEqualTo(422);
    assertThat(field(nm)).isEqualTo("steps[0].n");

    Api.Response foreign = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","method":"structured","sparsity":0.5,"n":2}]}""".formatted(modelId));
    assertThat(foreign.status()).isEqualTo(422);
    assertThat(foreign.json().get("errors").toString()).contains("steps[0].n").contains("not allowed in a structured");
    Api.Response structured = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","method":"structured","threshold":0.1}]}""".formatted(modelId));
    assertThat(structured.status()).isEqualTo(422);
    assertThat(structured.json().get("errors").toString()).contains("steps[0].threshold").contains("steps[0].sparsity");

    Api.Response clusters = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"share","clusters":8}]}""".formatted(modelId));
    assertThat(clusters.status()).isEqualTo(422);
    assertThat(clusters.json().get("errors").get(0).get("message").asString()).contains("between 16 and 256");

    Api.Response afterShare = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"share"},{"type":"quantize"}]}""".formatted(modelId));
    assertThat(afterShare.status()).isEqualTo(422);
    assertThat(field(afterShare)).isEqualTo("steps[1]");

    // Heads are built; they are ranked by weight norms, so the activation criterion is a 422.
    Api.Response heads = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","method":"structured","sparsity":0.5,"unit":"heads",
        "criterion":"activation"}]}""".formatted(modelId));
    assertThat(heads.status()).isEqualTo(422);
    assertThat(heads.json().get("errors").toString()).contains("steps[0].criterion").contains("calibrationDatasetId");
    Api.Response correlation = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","method":"correlation","threshold":0.9}]}""".formatted(modelId));
    assertThat(correlation.status()).isEqualTo(422);
    assertThat(field(correlation)).isEqualTo("calibrationDatasetId");
    assertThat(correlation.json().get("errors").get(0).get("message").asString())
        .contains("steps[0] (correlation pruning)");
    Api.Response byActivation = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","method":"structured","sparsity":0.5,"criterion":"activation"}]}"""
        .formatted(modelId));
    assertThat(byActivation.status()).isEqualTo(422);
    assertThat(field(byActivation)).isEqualTo("calibrationDatasetId");

    Api.Response wanda = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","method":"wanda","sparsity":0.5}]}""".formatted(modelId));
    // Wanda is built; without a calibration dataset it is a 422 naming the step.
    assertThat(wanda.status()).isEqualTo(422);
    assertThat(field(wanda)).isEqualTo("calibrationDatasetId");
    assertThat(wanda.json().get("errors").get(0).get("message").asString()).contains("steps[0] (wanda pruning)");

    // The N:M groups of c1.w run over its 16 input channels: m = 32 does not tile them.
    Api.Response tiles = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","method":"nm","n":2,"m":32,"include":["c.\\\\.w"]}]}"""
        .formatted(modelId));
    assertThat(tiles.status()).isEqualTo(422);
    assertThat(tiles.json().get("errors").get(0).get("message").asString())
        .contains("tensor 'c1.w' has 16 weights along its input axis, not a multiple of m = 32");
  }

  private static String field(Api.Response r) {
    return r.json().get("errors").get(0).get("field").asString();
  }

  private JsonNode run(String body) {
    Api.Response submitted = api.postJson("/v1/jobs", body);
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    return api.awaitJob(submitted.json().get("id").asString(), TIMEOUT);
  }

  private String upload(Path model) {
    Api.Response r = api.postFile("/v1/models", model);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    return r.json().get("id").asString();
  }

  private static List<Long> dims(ModelProto m, String name) {
    return m.getGraph().getInitializerList().stream().filter(t -> t.getName().equals(name)).findFirst().orElseThrow()
        .getDimsList();
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
