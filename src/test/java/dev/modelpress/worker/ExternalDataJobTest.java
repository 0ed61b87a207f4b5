package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzWriter;
import dev.modelpress.format.onnx.OnnxExternalData;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.system.UploadProperties;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.ExternalDataModels;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;

/**
 * ONNX models with external data through the real service: uploaded as one zip or tar, quantized
 * by a real job with the streaming quantizer, downloaded as {@code model.onnx} + {@code
 * model.onnx.data}, run in ONNX Runtime next to the original. Hostile archives are precise 4xx
 * problems that leave no row, object or spool file behind.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.poll-interval=500ms",
        "modelpress.uploads.max-bytes=100MB"})
@ActiveProfiles("test")
class ExternalDataJobTest {

  private static final String PROBLEMS = "https://modelpress.dev/problems/";
  private static final Duration TIMEOUT = Duration.ofMinutes(2);
  static final int K = 128;
  static final int H = 64;
  static final int N = 16;

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;
  @Autowired UploadProperties uploads;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  Path externalModel(Path dir) throws IOException {
    return externalModel(dir, 13);
  }

  /** x[batch, K] · W0[K, H] -> Relu -> · W1[H, N] = y, both weights in model.onnx.data. */
  Path externalModel(Path dir, long opset) throws IOException {
    Files.createDirectories(dir);
    ModelProto m = OnnxGraphBuilder.opset(opset).inputSymbolic("x", TensorProto.DataType.FLOAT, "batch", K)
        .initializer("W0", OnnxGraphBuilder.randomFloats(1, K * H, 0.2f), K, H)
        .initializer("W1", OnnxGraphBuilder.randomFloats(2, H * N, 0.2f), H, N)
        .matMul("x", "W0", "h").relu("h", "r").matMul("r", "W1", "y").output("y").build();
    return ExternalDataModels.externalize(m, dir, "model.onnx", 1024);
  }

  @Test
  void zipUploadIsQuantizedPerChannelAndTheDownloadedPairRunsCloseToTheOriginal() throws Exception {
    Path model = externalModel(tmp.resolve("in"));
    byte[] zip = zip(Map.of("model.onnx", Files.readAllBytes(model),
        "model.onnx.data", Files.readAllBytes(tmp.resolve("in/model.onnx.data"))));

    Api.Response up = api.postBytes("/v1/models?name=ext-zip", zip, "application/zip");
    assertThat(up.status()).as(up.body()).isEqualTo(201);
    assertThat(up.json().get("format").asString()).isEqualTo("onnx");
    assertThat(up.json().get("tensorCount").asInt()).isEqualTo(2);
    assertThat(up.json().get("parameterCount").asLong()).isEqualTo((long) K * H + H * N);
    assertThat(up.json().get("bytes").asLong()).isEqualTo(zip.length);

    Path out = quantizeAndDownload(up.json().get("id").asString(), "{\"bits\":8,\"granularity\":\"channel\"}");

    // The codes are one byte per weight; the data file holds them 4 KiB-aligned.
    long dataBytes = Files.size(out.resolve("model.onnx.data"));
    assertThat(dataBytes).isBetween((long) K * H + H * N, (long) K * H + H * N + 2 * 4096);
    assertThat(dataBytes).isLessThan(Files.size(tmp.resolve("in/model.onnx.data")) / 3);
    assertInt8External(out.resolve("model.onnx"));
    assertRunsClose(model, out.resolve("model.onnx"), 0.02);
  }

  @Test
  void tarUploadIsQuantizedPerTensorAndTheDownloadedPairRunsCloseToTheOriginal() throws Exception {
    Path model = externalModel(tmp.resolve("in"));
    byte[] tar = tar(entry("model.onnx", '0', Files.readAllBytes(model)),
        entry("model.onnx.data", '0', Files.readAllBytes(tmp.resolve("in/model.onnx.data"))));

    Api.Response up = api.postBytes("/v1/models?name=ext-tar", tar, "application/x-tar");
    assertThat(up.status()).as(up.body()).isEqualTo(201);
    assertThat(up.json().get("parameterCount").asLong()).isEqualTo((long) K * H + H * N);

    Path out = quantizeAndDownload(up.json().get("id").asString(),
        "{\"bits\":8,\"granularity\":\"tensor\",\"symmetric\":false}");

    assertThat(Files.size(out.resolve("model.onnx.data"))).isLessThan(Files.size(tmp.resolve("in/model.onnx.data")) / 3);
    assertInt8External(out.resolve("model.onnx"));
    assertRunsClose(model, out.resolve("model.onnx"), 0.03);
  }

  @Test
  void int4Group32JobStreamsPackedCodesAndReportsFidelityOnTheEvaluationDataset() throws Exception {
    Path model = externalModel(tmp.resolve("in"), 21);
    String id = uploadZip(model);
    String dataset = uploadDataset(16);

    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","evaluationDatasetId":"%s","steps":[{"type":"quantize",
         "weights":{"bits":4,"granularity":"group","groupSize":32}}]}""".formatted(id, dataset));
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    Path out = awaitAndDownload(submitted.json().get("id").asString());

    try (OnnxExternalData m = OnnxExternalData.open(out.resolve("model.onnx"))) {
      // Blocked DequantizeLinear (opset 21): INT4 codes, two per byte, in the data file.
      for (String w : new String[] {"W0", "W1"}) {
        TensorProto codes = m.model().getGraph().getInitializerList().stream()
            .filter(t -> t.getName().equals(w + "_quantized")).findFirst().orElseThrow();
        assertThat(codes.getDataType()).isEqualTo(TensorProto.DataType.INT4_VALUE);
        assertThat(OnnxExternalData.ref(codes).location()).isEqualTo("model.onnx.data");
        assertThat(OnnxExternalData.ref(codes).length()).isEqualTo(w.equals("W0") ? K * H / 2 : H * N / 2);
      }
    }
    double error = assertRunsClose(model, out.resolve("model.onnx"), 0.10);
    JsonNode report = lastReport;
    assertThat(report.at("/stepReports/0/tensors/0/encoding").asString()).isEqualTo("DequantizeLinear");
    assertThat(report.at("/stepReports/0/tensors/0/scheme").asString()).isEqualTo("int4");
    assertThat(report.at("/stepReports/0/summary").asString()).startsWith("int4 weight quantization (symmetric, per "
        + "group of 32) of 2 tensors: 36864 -> ").endsWith("; streamed to external data");
    // The fidelity section: ONNX Runtime ran both models (external data beside each) on 16 samples.
    JsonNode fidelity = report.get("fidelity");
    assertThat(fidelity.get("samples").asInt()).isEqualTo(16);
    JsonNode y = fidelity.get("outputs").get(0);
    assertThat(y.get("name").asString()).isEqualTo("y");
    assertThat(y.get("meanCosine").asDouble()).isGreaterThan(0.99).isLessThan(1.0);
    assertThat(y.get("maxAbsError").asDouble()).isGreaterThan(0);
    System.out.printf("external int4 g32 job: max relative error %.4f, mean cosine %.5f, data %d bytes%n", error,
        y.get("meanCosine").asDouble(), Files.size(out.resolve("model.onnx.data")));
  }

  @Test
  void fp16JobOnAnExternalDataArchiveStoresHalfTheBytesAndRunsCloseToTheOriginal() throws Exception {
    Path model = externalModel(tmp.resolve("in"));
    String id = uploadZip(model);
    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"quantize","weights":{"dtype":"fp16"}}]}""".formatted(id));
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    Path out = awaitAndDownload(submitted.json().get("id").asString());
    try (OnnxExternalData m = OnnxExternalData.open(out.resolve("model.onnx"))) {
      List<TensorProto> half = m.model().getGraph().getInitializerList().stream()
          .filter(t -> t.getDataType() == TensorProto.DataType.FLOAT16_VALUE).toList();
      assertThat(half).extracting(TensorProto::getName).containsExactly("W0_fp16", "W1_fp16");
      assertThat(half).allMatch(OnnxExternalData::isExternal);
      assertThat(OnnxExternalData.ref(half.get(0)).length()).isEqualTo(2L * K * H);
    }
    // fp16 keeps 11 significant bits: the output moves by well under 0.1% of its range.
    double error = assertRunsClose(model, out.resolve("model.onnx"), 1e-3);
    assertThat(lastReport.at("/stepReports/0/tensors/0/encoding").asString()).isEqualTo("Cast");
    System.out.printf("external fp16 job: max relative error %.6f%n", error);
  }

  @Test
  void stepsThatCannotStreamAnswer501AtSubmitNamingWhatIsNotBuilt() throws Exception {
    String id = uploadZip(externalModel(tmp.resolve("in")));

    assertNotBuilt("""
        {"modelId":"%s","steps":[{"type":"prune","sparsity":0.5}]}""".formatted(id),
        "a prune step was given: pruning (magnitude) over external data is not built yet");
    assertNotBuilt("""
        {"modelId":"%s","steps":[{"type":"quantize","activations":{"calibrator":"minmax"}}]}""".formatted(id),
        "a quantize step was given: static quantization (calibrated activations) over external data is not built yet");
    assertNotBuilt("""
        {"modelId":"%s","steps":[{"type":"quantize","weights":{"bits":8}},{"type":"quantize","weights":{"bits":4}}]}"""
        .formatted(id), "2 steps were given; chaining steps over external data is not built yet");
    String dataset = uploadDataset(4);
    assertNotBuilt("""
        {"modelId":"%s","calibrationDatasetId":"%s","steps":[{"type":"quantize","weights":{"bits":8}}]}"""
        .formatted(id, dataset),
        "a calibration dataset was given: calibrated steps over external data are not built yet");
    assertNotBuilt("""
        {"modelId":"%s","steps":[{"type":"quantize","weights":{"bits":4,"symmetric":false,"granularity":"group",
          "groupSize":32,"range":"lsq"}}]}""".formatted(id),
        "range lsq (fractional zero points) is not built for the streaming path yet");
  }

  private void assertNotBuilt(String body, String detail) {
    Api.Response r = api.postJson("/v1/jobs", body);
    assertThat(r.status()).as(r.body()).isEqualTo(501);
    assertThat(r.problemType()).isEqualTo(PROBLEMS + "not-implemented");
    assertThat(r.json().get("detail").asString()).contains(detail);
  }

  private String uploadZip(Path model) throws IOException {
    byte[] zip = zip(Map.of("model.onnx", Files.readAllBytes(model),
        "model.onnx.data", Files.readAllBytes(model.resolveSibling("model.onnx.data"))));
    Api.Response up = api.postBytes("/v1/models", zip, "application/zip");
    assertThat(up.status()).as(up.body()).isEqualTo(201);
    return up.json().get("id").asString();
  }

  /** {@code samples} rows of x[samples, K], values uniform in ±1. */
  private String uploadDataset(int samples) throws IOException {
    Path npz = tmp.resolve("eval-" + samples + ".npz");
    float[] x = OnnxGraphBuilder.randomFloats(11, samples * K, 1f);
    ByteBuffer b = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(x);
    NpzWriter.write(npz, List.of(new NdArray("x", DType.FLOAT32, new long[] {samples, K}, b)), false);
    Api.Response r = api.postFile("/v1/datasets", npz);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    return r.json().get("id").asString();
  }

  // ---- hostile archives --------------------------------------------------------------------

  @Test
  void zipEntryClimbingOutWithDotDotIs422NamingIt() throws Exception {
    assertRefused(zip(Map.of("model.onnx", tinyModel(), "../x", new byte[] {1})), "application/zip", 422,
        "invalid-model", "archive entry '../x' has an unsafe path: a '..' component");
  }

  @Test
  void tarEntryWithAnAbsolutePathIs422NamingIt() throws Exception {
    assertRefused(tar(entry("model.onnx", '0', tinyModel()), entry("/etc/evil", '0', new byte[] {1})),
        "application/x-tar", 422, "invalid-model", "archive entry '/etc/evil' has an unsafe path: an absolute path");
  }

  @Test
  void tarSymbolicLinkIs422() throws Exception {
    assertRefused(tar(entry("model.onnx", '0', tinyModel()), entry("model.onnx.data", '2', new byte[0])),
        "application/x-tar", 422, "invalid-model", "tar entry 'model.onnx.data' is a symbolic link");
  }

  @Test
  void archiveWithTooManyEntriesIs413() throws Exception {
    Map<String, byte[]> many = new LinkedHashMap<>();
    many.put("model.onnx", tinyModel());
    for (int i = 0; i < 300; i++) {
      many.put("f" + i, new byte[] {1});
    }
    assertRefused(zip(many), "application/zip", 413, "payload-too-large", "more than 256 entries");
  }

  @Test
  void archiveWhoseDataFileIsMissingIs422NamingTheTensor() throws Exception {
    Path model = externalModel(tmp.resolve("in"));
    assertRefused(zip(Map.of("model.onnx", Files.readAllBytes(model))), "application/zip", 422, "invalid-model",
        "initializer 'W0' names external file 'model.onnx.data', which does not exist beside the model");
  }

  @Test
  void zipBombStopsAtTheExpansionLimitWith413() throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ZipOutputStream z = new ZipOutputStream(bytes)) {
      z.putNextEntry(new ZipEntry("model.onnx"));
      z.write(tinyModel());
      z.putNextEntry(new ZipEntry("model.onnx.data"));
      byte[] zeros = new byte[1 << 20];
      for (int i = 0; i < 64; i++) {
        z.write(zeros);
      }
    }
    byte[] bomb = bytes.toByteArray();
    assertThat(bomb.length).isLessThan(200_000); // 64 MiB of zeros in well under 200 kB
    assertRefused(bomb, "application/zip", 413, "payload-too-large", "expands more than 100 times its own size");
  }

  @Test
  void archiveWithTwoModelsIs422() throws Exception {
    assertRefused(zip(Map.of("a.onnx", tinyModel(), "b.onnx", tinyModel())), "application/zip", 422,
        "invalid-model", "exactly one .onnx file, it holds 2");
  }

  // ---- helpers -----------------------------------------------------------------------------

  private Path quantizeAndDownload(String modelId, String weights) throws IOException {
    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"quantize","weights":%s}]}""".formatted(modelId, weights));
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    return awaitAndDownload(submitted.json().get("id").asString());
  }

  /** The report.json of the last job {@link #awaitAndDownload} fetched. */
  private JsonNode lastReport;

  private Path awaitAndDownload(String jobId) throws IOException {
    JsonNode job = api.awaitJob(jobId, TIMEOUT);
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    Path out = Files.createDirectories(tmp.resolve("out-" + jobId));
    for (String name : new String[] {"model.onnx", "model.onnx.data"}) {
      Api.Response r = api.download("/v1/jobs/" + jobId + "/artifacts/" + name, out.resolve(name));
      assertThat(r.status()).isEqualTo(200);
    }
    JsonNode report = api.get("/v1/jobs/" + jobId + "/artifacts/report.json").json();
    assertThat(report.get("stepReports").get(0).get("tensors").size()).isEqualTo(2);
    lastReport = report;
    return out;
  }

  /** Both weights became INT8 tensors stored in model.onnx.data beside the model. */
  private static void assertInt8External(Path model) throws Exception {
    try (OnnxExternalData m = OnnxExternalData.open(model)) {
      long int8External = m.model().getGraph().getInitializerList().stream()
          .filter(t -> t.getDataType() == TensorProto.DataType.INT8_VALUE && OnnxExternalData.isExternal(t)
              && OnnxExternalData.ref(t).location().equals("model.onnx.data"))
          .count();
      assertThat(int8External).isEqualTo(2);
      assertThat(m.model().getGraph().getInitializerList().stream()
          .filter(t -> t.getDataType() == TensorProto.DataType.FLOAT_VALUE && t.getDimsCount() == 2)).isEmpty();
    }
  }

  /**
   * Runs both on two rows; returns the max error over the original's largest |value|, asserted
   * below {@code relative}.
   */
  private static double assertRunsClose(Path original, Path quantized, double relative) {
    float[] x = OnnxGraphBuilder.randomFloats(9, 2 * K, 1f);
    float[] expected;
    float[] actual;
    try (OrtRunner a = new OrtRunner(original); OrtRunner b = new OrtRunner(quantized)) {
      expected = a.run("y", "x", x, 2, K);
      actual = b.run("y", "x", x, 2, K);
    }
    double maxAbs = 0;
    double maxErr = 0;
    for (int i = 0; i < expected.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
      maxErr = Math.max(maxErr, Math.abs(expected[i] - actual[i]));
    }
    assertThat(maxAbs).isGreaterThan(0.1);
    assertThat(maxErr).isGreaterThan(0).isLessThan(relative * maxAbs);
    return maxErr / maxAbs;
  }

  private void assertRefused(byte[] body, String contentType, int status, String type, String detail)
      throws IOException {
    long rows = jdbc.sql("select count(*) from models").query(Long.class).single();
    Api.Response r = api.postBytes("/v1/models", body, contentType);
    assertThat(r.status()).as(r.body()).isEqualTo(status);
    assertThat(r.problemType()).isEqualTo(PROBLEMS + type);
    assertThat(r.json().get("detail").asString()).contains(detail).doesNotContain("Exception");
    assertThat(jdbc.sql("select count(*) from models").query(Long.class).single()).isEqualTo(rows);
    assertThat(spoolEntries()).as("spool files or unpack directories left behind").isZero();
  }

  private long spoolEntries() throws IOException {
    if (!Files.exists(uploads.spoolDir())) {
      return 0;
    }
    try (Stream<Path> s = Files.list(uploads.spoolDir())) {
      return s.count();
    }
  }

  private byte[] tinyModel() {
    ModelProto m = OnnxGraphBuilder.opset(13).input("x", 1, 4)
        .initializer("w", OnnxGraphBuilder.randomFloats(1, 16, 1f), 4, 4).matMul("x", "w", "y").output("y").build();
    return m.toByteArray();
  }

  static byte[] zip(Map<String, byte[]> entries) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ZipOutputStream z = new ZipOutputStream(bytes)) {
      for (var e : entries.entrySet()) {
        z.putNextEntry(new ZipEntry(e.getKey()));
        z.write(e.getValue());
        z.closeEntry();
      }
    }
    return bytes.toByteArray();
  }

  record TarEntry(String name, char type, byte[] data) {}

  static TarEntry entry(String name, char type, byte[] data) {
    return new TarEntry(name, type, data);
  }

  /** A ustar archive, as {@code tar --format=ustar} writes it. */
  static byte[] tar(TarEntry... entries) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (TarEntry e : entries) {
      byte[] h = new byte[512];
      put(h, 0, e.name());
      put(h, 100, "0000644");
      put(h, 108, "0000000");
      put(h, 116, "0000000");
      put(h, 124, String.format("%011o", e.data().length));
      put(h, 136, "00000000000");
      java.util.Arrays.fill(h, 148, 156, (byte) ' ');
      h[156] = (byte) e.type();
      if (e.type() == '2') {
        put(h, 157, "/etc/passwd");
      }
      put(h, 257, "ustar");
      put(h, 263, "00");
      int sum = 0;
      for (byte b : h) {
        sum += b & 0xff;
      }
      put(h, 148, String.format("%06o", sum));
      h[154] = 0;
      out.writeBytes(h);
      out.writeBytes(e.data());
      out.writeBytes(new byte[(512 - e.data().length % 512) % 512]);
    }
    out.writeBytes(new byte[1024]);
    return out.toByteArray();
  }

  private static void put(byte[] h, int at, String s) {
    byte[] b = s.getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(b, 0, h, at, b.length);
  }
}
