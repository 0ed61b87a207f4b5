package dev.modelpress.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.storage.StorageProperties;
import dev.modelpress.system.UploadProperties;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Random;
import java.util.stream.Stream;
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
 * Model upload over real HTTP into a real PostgreSQL and artifact store: good files are summarised
 * correctly; every kind of bad file is a precise problem and leaves no row, object or spool file.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=false", "modelpress.uploads.max-bytes=100MB"})
@ActiveProfiles("test")
class ModelApiTest {

  private static final String PROBLEMS = "https://modelpress.dev/problems/";

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;
  @Autowired StorageProperties storage;
  @Autowired UploadProperties uploads;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  @Test
  void tensorsListIncludesConstantNodeWeightsWithTheirLocation() {
    Path file = OnnxGraphBuilder.opset(13).input("x", 1, 8)
        .initializer("b", new float[4], 4)
        .constant("W", OnnxGraphBuilder.randomFloats(1, 32, 1f), 8, 4)
        .matMul("x", "W", "h").add("h", "b", "y").output("y").writeTo(tmp);
    Api.Response r = api.postFile("/v1/models", file);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    assertThat(r.json().get("tensorCount").asInt()).isEqualTo(2);

    JsonNode tensors = api.get("/v1/models/" + r.json().get("id").asString() + "/tensors").json();
    assertThat(tensors.size()).isEqualTo(2);
    assertThat(tensors.get(0).get("name").asString()).isEqualTo("b");
    assertThat(tensors.get(0).has("location") && !tensors.get(0).get("location").isNull()).isFalse();
    assertThat(tensors.get(1).get("name").asString()).isEqualTo("W");
    assertThat(tensors.get(1).get("location").asString()).isEqualTo("Constant node");
    assertThat(tensors.get(1).get("consumers").get(0).asString()).isEqualTo("MatMul:1");
  }

  @Test
  void uploadsTheRealMiniLmAndSummarisesIt() throws Exception {
    Path model = MiniLm.modelFile();
    Api.Response r = api.postFile("/v1/models?name=minilm", model);

    assertThat(r.status()).isEqualTo(201);
    JsonNode m = r.json();
    assertThat(r.header("Location")).isEqualTo("/v1/models/" + m.get("id").asString());
    assertThat(m.get("format").asString()).isEqualTo("onnx");
    assertThat(m.get("name").asString()).isEqualTo("minilm");
    assertThat(m.get("bytes").asLong()).isEqualTo(Files.size(model));
    assertThat(m.get("sha256").asString()).isEqualTo(sha256(model));
    assertThat(m.get("parameterCount").asLong()).isBetween(22_500_000L, 22_800_000L);
    assertThat(m.get("inputs").findValuesAsString("name"))
        .containsExactlyInAnyOrder("input_ids", "attention_mask", "token_type_ids");
    assertThat(m.get("opsets").get("").asLong()).isPositive();

    JsonNode tensors = api.get("/v1/models/" + m.get("id").asString() + "/tensors").json();
    assertThat(tensors.size()).isEqualTo(m.get("tensorCount").asInt());
    assertThat(tensors.findValuesAsString("name")).contains("embeddings.word_embeddings.weight");

    assertThat(api.get("/v1/models/" + m.get("id").asString()).json().get("sha256").asString())
        .isEqualTo(m.get("sha256").asString());
    assertThat(api.get("/v1/models?size=200").json().get("items").findValuesAsString("id"))
        .contains(m.get("id").asString());
  }

  @Test
  void uploadsAMultipartSafetensorsFile() throws Exception {
    byte[] file = safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16);
    Api.Response r = api.postMultipart("/v1/models", "tiny.safetensors", file);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    assertThat(r.json().get("format").asString()).isEqualTo("safetensors");
    assertThat(r.json().get("name").asString()).isEqualTo("tiny.safetensors");
    assertThat(r.json().get("parameterCount").asLong()).isEqualTo(4);
    assertThat(r.json().get("tensorCount").asInt()).isEqualTo(1);
  }

  @Test
  void deleteRemovesRowAndObject() throws Exception {
    long objectsBefore = objects();
    String id = api.postFile("/v1/models", tinyOnnx()).json().get("id").asString();
    assertThat(objects()).isEqualTo(objectsBefore + 1);
    assertThat(api.delete("/v1/models/" + id).status()).isEqualTo(204);
    assertThat(api.get("/v1/models/" + id).status()).isEqualTo(404);
    assertThat(objects()).isEqualTo(objectsBefore);
    assertThat(api.delete("/v1/models/" + id).status()).isEqualTo(404);
  }

  @Test
  void rejectsATruncatedOnnxFile() throws Exception {
    byte[] all = Files.readAllBytes(MiniLm.modelFile());
    Path half = tmp.resolve("half.onnx");
    Files.write(half, java.util.Arrays.copyOf(all, all.length / 2));
    assertRejected(api.postFile("/v1/models", half), 422, "invalid-model");
  }

  @Test
  void rejectsRandomBytesAsAnUnsupportedFormat() throws Exception {
    byte[] noise = new byte[4096];
    new Random(7).nextBytes(noise);
    noise[0] = 0x5a;
    Api.Response r = api.postBytes("/v1/models", noise, "application/octet-stream");
    assertRejected(r, 415, "unsupported-format");
  }

  @Test
  void rejectsAnEmptyBody() throws Exception {
    assertRejected(api.postBytes("/v1/models", new byte[0], "application/octet-stream"), 400, "malformed-request");
  }

  @Test
  void rejectsATensorDeclaringMoreBytesThanItHolds() throws Exception {
    ModelProto good = OnnxGraphBuilder.opset(13).input("x", 1, 4)
        .initializer("w", new float[16], 4, 4).matMul("x", "w", "y").output("y").build();
    TensorProto w = good.getGraph().getInitializer(0).toBuilder().setDims(0, 4000).build();
    ModelProto bad = good.toBuilder().setGraph(good.getGraph().toBuilder().setInitializer(0, w)).build();
    Api.Response r = api.postFile("/v1/models", OnnxGraphBuilder.write(bad, tmp));
    assertRejected(r, 422, "invalid-model");
    assertThat(r.json().get("detail").asString()).contains("w");
  }

  @Test
  void rejectsSafetensorsWhoseOffsetsPassTheEndOfTheFile() throws Exception {
    byte[] file = safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1000],\"data_offsets\":[0,4000]}}", 16);
    Api.Response r = api.postBytes("/v1/models", file, "application/octet-stream");
    assertRejected(r, 422, "invalid-model");
    assertThat(r.json().get("detail").asString()).contains("w");
  }

  @Test
  void rejectsAHeaderLengthLargerThanTheFile() throws Exception {
    byte[] file = safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 40);
    assertRejected(api.postBytes("/v1/models", file, "application/octet-stream"), 422, "invalid-model");
  }

  @Test
  void rejectsAFileThatIsNotTheDeclaredFormat() throws Exception {
    assertRejected(api.postFile("/v1/models?format=safetensors", tinyOnnx()), 422, "invalid-model");
    assertRejected(api.postFile("/v1/models?format=keras", tinyOnnx()), 400, "invalid-parameter");
  }

  @Test
  void refusesADeclaredSizeOverTheLimitBeforeReadingTheBody() throws Exception {
    long rows = jdbc.sql("select count(*) from models").query(Long.class).single();
    assertThat(api.postDeclaringLength("/v1/models", 101L * 1024 * 1024)).isEqualTo(413);
    assertThat(api.postDeclaringLength("/v1/datasets", 1L << 40)).isEqualTo(413);
    assertThat(jdbc.sql("select count(*) from models").query(Long.class).single()).isEqualTo(rows);
    assertThat(spoolFiles()).isZero();
  }

  @Test
  void rejectsAnUnsupportedContentType() {
    Api.Response r = api.postBytes("/v1/models", "hello".getBytes(StandardCharsets.UTF_8), "text/plain");
    assertThat(r.status()).isEqualTo(415);
    assertThat(r.header("Content-Type")).startsWith("application/problem+json");
  }

  @Test
  void unknownAndMalformedIdsAre404() {
    assertThat(api.get("/v1/models/" + java.util.UUID.randomUUID()).problemType()).isEqualTo(PROBLEMS + "not-found");
    assertThat(api.get("/v1/models/not-a-uuid").status()).isEqualTo(404);
    assertThat(api.get("/v1/models?size=0").status()).isEqualTo(400);
  }

  @Test
  void servesTheContractAndSwaggerUi() {
    Api.Response spec = api.get("/openapi.yaml");
    assertThat(spec.status()).isEqualTo(200);
    assertThat(spec.body()).contains("openapi: 3.1.0").contains("/v1/jobs/{jobId}/artifacts/{name}");
    assertThat(api.get("/swagger-ui/index.html").status()).isEqualTo(200);
  }

  private void assertRejected(Api.Response r, int status, String type) throws IOException {
    long rows = jdbc.sql("select count(*) from models").query(Long.class).single();
    assertThat(r.status()).as(r.body()).isEqualTo(status);
    assertThat(r.header("Content-Type")).startsWith("application/problem+json");
    assertThat(r.problemType()).isEqualTo(PROBLEMS + type);
    assertThat(r.json().get("status").asInt()).isEqualTo(status);
    assertThat(r.json().get("detail").asString()).isNotBlank().doesNotContain("Exception");
    assertThat(jdbc.sql("select count(*) from models").query(Long.class).single()).isEqualTo(rows);
    assertThat(objectsNotInModels()).as("objects without a row").isZero();
    assertThat(spoolFiles()).as("spool files left behind").isZero();
  }

  private long objects() throws IOException {
    Path root = storage.filesystem().root();
    if (!Files.exists(root)) {
      return 0;
    }
    try (Stream<Path> s = Files.walk(root)) {
      return s.filter(Files::isRegularFile).filter(p -> !p.getFileName().toString().startsWith(".")).count();
    }
  }

  private long objectsNotInModels() throws IOException {
    Path root = storage.filesystem().root();
    if (!Files.exists(root)) {
      return 0;
    }
    var keys = jdbc.sql("select storage_key from models").query(String.class).list();
    try (Stream<Path> s = Files.walk(root)) {
      return s.filter(Files::isRegularFile).filter(p -> !p.getFileName().toString().startsWith("."))
          .map(p -> root.relativize(p).toString()).filter(k -> !keys.contains(k)).count();
    }
  }

  private long spoolFiles() throws IOException {
    if (!Files.exists(uploads.spoolDir())) {
      return 0;
    }
    try (Stream<Path> s = Files.list(uploads.spoolDir())) {
      return s.count();
    }
  }

  private Path tinyOnnx() {
    return OnnxGraphBuilder.opset(13).input("x", 1, 4)
        .initializer("w", OnnxGraphBuilder.randomFloats(1, 16, 1f), 4, 4).matMul("x", "w", "y").output("y")
        .writeTo(tmp);
  }

  private static byte[] safetensors(String header, int dataBytes) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h);
    return b.array();
  }

  private static String sha256(Path file) throws Exception {
    MessageDigest d = MessageDigest.getInstance("SHA-256");
    d.update(Files.readAllBytes(file));
    return HexFormat.of().formatHex(d.digest());
  }
}
