package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

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
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
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

  /** x[2, K] · W0[K, H] -> Relu -> · W1[H, N] = y, both weights in model.onnx.data. */
  Path externalModel(Path dir) throws IOException {
    Files.createDirectories(dir);
    ModelProto m = OnnxGraphBuilder.opset(13).input("x", 2, K)
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
  void stepsThatCannotStreamAnswer501AtSubmit() throws Exception {
    Path model = externalModel(tmp.resolve("in"));
    byte[] zip = zip(Map.of("model.onnx", Files.readAllBytes(model),
        "model.onnx.data", Files.readAllBytes(tmp.resolve("in/model.onnx.data"))));
    String id = api.postBytes("/v1/models", zip, "application/zip").json().get("id").asString();

    Api.Response prune = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","sparsity":0.5}]}""".formatted(id));
    assertThat(prune.status()).isEqualTo(501);
    assertThat(prune.problemType()).isEqualTo(PROBLEMS + "not-implemented");
    assertThat(prune.json().get("detail").asString()).contains("a prune step was given");

    Api.Response int4 = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"quantize","weights":{"bits":4,"granularity":"group","groupSize":32}}]}"""
        .formatted(id));
    assertThat(int4.status()).isEqualTo(501);
    assertThat(int4.json().get("detail").asString()).contains("not built yet: bits 4, granularity group");
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
    String jobId = submitted.json().get("id").asString();
    JsonNode job = api.awaitJob(jobId, TIMEOUT);
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    Path out = Files.createDirectories(tmp.resolve("out-" + jobId));
    for (String name : new String[] {"model.onnx", "model.onnx.data"}) {
      Api.Response r = api.download("/v1/jobs/" + jobId + "/artifacts/" + name, out.resolve(name));
      assertThat(r.status()).isEqualTo(200);
    }
    JsonNode report = api.get("/v1/jobs/" + jobId + "/artifacts/report.json").json();
    assertThat(report.get("stepReports").get(0).get("tensors").size()).isEqualTo(2);
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

  private static void assertRunsClose(Path original, Path quantized, double relative) {
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
