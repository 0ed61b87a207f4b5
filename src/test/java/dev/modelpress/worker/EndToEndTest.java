package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzWriter;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
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
 * The whole service on the real all-MiniLM-L6-v2: HTTP upload, a job through the PostgreSQL queue
 * and a real worker, download, and an independent check of the artifact in ONNX Runtime on real
 * sentences. Also: cancellation of a running job and recovery from a worker that died mid-job.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.concurrency=1",
        "modelpress.worker.lease=3s", "modelpress.worker.poll-interval=500ms"})
@ActiveProfiles("test")
class EndToEndTest {

  private static final Duration JOB_TIMEOUT = Duration.ofMinutes(5);

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  @Test
  void int8PerChannelMiniLmKeepsItsEmbeddingsAndShrinks() throws Exception {
    Path original = MiniLm.modelFile();
    String modelId = upload(original);
    List<String> sentences = MiniLm.sentences();
    assertThat(sentences).hasSizeGreaterThanOrEqualTo(50);
    List<NdArray> encoded = MiniLm.encode(sentences, 64);
    Path npz = tmp.resolve("eval.npz");
    NpzWriter.write(npz, encoded, true);
    Api.Response dataset = api.postFile("/v1/datasets?name=sentences", npz);
    assertThat(dataset.status()).as(dataset.body()).isEqualTo(201);
    assertThat(dataset.json().get("samples").asLong()).isEqualTo(sentences.size());

    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"quantize","weights":{"bits":8,"symmetric":true,"granularity":"channel"}}],
         "evaluationDatasetId":"%s"}""".formatted(modelId, dataset.json().get("id").asString()));
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    JsonNode job = api.awaitJob(submitted.json().get("id").asString(), JOB_TIMEOUT);
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    assertThat(job.get("attempts").asInt()).isEqualTo(1);
    assertThat(job.get("progress").get("fraction").asDouble()).isEqualTo(1.0);

    JsonNode report = job.get("report");
    long before = Files.size(original);
    assertThat(report.get("bytesBefore").asLong()).isEqualTo(before);
    assertThat(report.get("bytesAfter").asLong()).isLessThanOrEqualTo((long) (before * 0.30));
    assertThat(report.get("meanCosine").asDouble()).isGreaterThanOrEqualTo(0.99);

    // Download with the headers a resuming client relies on.
    JsonNode artifact = artifact(job, "model.onnx");
    Path downloaded = tmp.resolve("model-int8.onnx");
    Api.Response dl = api.download(artifact.get("href").asString(), downloaded);
    assertThat(dl.status()).isEqualTo(200);
    assertThat(Long.parseLong(dl.header("Content-Length"))).isEqualTo(Files.size(downloaded));
    assertThat(sha256(Files.readAllBytes(downloaded))).isEqualTo(artifact.get("sha256").asString());
    assertThat(dl.header("ETag")).isEqualTo("\"" + artifact.get("sha256").asString() + "\"");
    HttpResponse<byte[]> range = api.getBytes(artifact.get("href").asString(), "Range", "bytes=100-1123");
    assertThat(range.statusCode()).isEqualTo(206);
    assertThat(range.body()).isEqualTo(Arrays.copyOfRange(Files.readAllBytes(downloaded), 100, 1124));
    assertThat(api.getBytes(artifact.get("href").asString(), "If-None-Match", dl.header("ETag")).statusCode())
        .isEqualTo(304);
    assertThat(api.getBytes(artifact.get("href").asString(), "Range", "bytes=999999999-").statusCode())
        .isEqualTo(416);

    // Independent check in ONNX Runtime: sentence embeddings of original and result.
    float[][] reference = MiniLm.sentenceEmbeddings(original, encoded);
    float[][] quantized = MiniLm.sentenceEmbeddings(downloaded, encoded);
    double sum = 0;
    for (int i = 0; i < reference.length; i++) {
      sum += MiniLm.cosine(reference[i], quantized[i]);
    }
    double meanCosine = sum / reference.length;
    System.out.printf("MiniLM int8 per-channel: %d -> %d bytes (%.1f%%), mean sentence cosine %.5f over %d sentences%n",
        before, Files.size(downloaded), 100.0 * Files.size(downloaded) / before, meanCosine, reference.length);
    assertThat(meanCosine).isGreaterThanOrEqualTo(0.99);
    assertThat(Files.size(downloaded)).isLessThanOrEqualTo((long) (before * 0.30));

    // The report artifact carries per-tensor errors.
    JsonNode fullReport = JsonMapper.builder().build().readTree(
        api.getBytes(artifact(job, "report.json").get("href").asString()).body());
    JsonNode tensors = fullReport.get("stepReports").get(0).get("tensors");
    assertThat(tensors.size()).isGreaterThan(30);
    for (JsonNode t : tensors) {
      assertThat(t.get("sqnrDb").asDouble()).as(t.get("name").asString()).isGreaterThan(25.0);
    }
    assertThat(fullReport.get("fidelity")).isNotNull();
  }

  @Test
  void magnitudePruningJobZeroesTheReportedFraction() throws Exception {
    String modelId = upload(MiniLm.modelFile());
    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"prune","sparsity":0.3,"scope":"global","exclude":[".*word_embeddings.*"]}]}"""
        .formatted(modelId));
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    JsonNode job = api.awaitJob(submitted.json().get("id").asString(), JOB_TIMEOUT);
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    assertThat(job.get("report").get("sparsity").asDouble()).isCloseTo(0.3, org.assertj.core.data.Offset.offset(0.001));

    Path downloaded = tmp.resolve("pruned.onnx");
    api.download(artifact(job, "model.onnx").get("href").asString(), downloaded);
    ModelProto pruned = OnnxModels.read(downloaded);
    long zeros = 0;
    long total = 0;
    for (TensorProto t : pruned.getGraph().getInitializerList()) {
      if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE || t.getDimsCount() < 2
          || t.getName().contains("word_embeddings")) {
        continue;
      }
      ByteBuffer data = t.getRawData().asReadOnlyByteBuffer().slice().order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < data.remaining() / 4; i++) {
        if (data.getFloat(i * 4) == 0f) {
          zeros++;
        }
        total++;
      }
    }
    assertThat(zeros / (double) total).isCloseTo(0.3, org.assertj.core.data.Offset.offset(0.01));
    // And the pruned model still runs.
    float[][] embeddings = MiniLm.sentenceEmbeddings(downloaded, MiniLm.encode(MiniLm.sentences().subList(0, 4), 32));
    assertThat(embeddings[0]).hasSize(MiniLm.HIDDEN);
  }

  @Test
  void cancellingARunningJobStopsItPromptly() throws Exception {
    String modelId = upload(MiniLm.modelFile());
    StringBuilder steps = new StringBuilder();
    for (int i = 1; i <= 16; i++) {
      steps.append(i > 1 ? "," : "").append("{\"type\":\"prune\",\"sparsity\":").append(i * 0.05).append("}");
    }
    String id = api.postJson("/v1/jobs", "{\"modelId\":\"" + modelId + "\",\"steps\":[" + steps + "]}")
        .json().get("id").asString();
    api.awaitJob(id, JOB_TIMEOUT, "RUNNING", "SUCCEEDED", "FAILED");
    long requested = System.nanoTime();
    Api.Response cancel = api.postJson("/v1/jobs/" + id + "/cancel", "");
    assertThat(cancel.status()).isEqualTo(202);
    JsonNode job = api.awaitJob(id, Duration.ofSeconds(30));
    double seconds = (System.nanoTime() - requested) / 1e9;
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("CANCELLED");
    assertThat(job.get("artifacts").size()).isZero();
    assertThat(seconds).as("cancellation latency").isLessThan(10);
    assertThat(jdbc.sql("select count(*) from artifacts where job_id = ?").param(UUID.fromString(id))
        .query(Integer.class).single()).isZero();
  }

  @Test
  void aJobWhoseWorkerDiedIsFinishedByAnother() throws Exception {
    Path model = OnnxGraphBuilder.opset(13).input("x", 1, 16)
        .initializer("w", OnnxGraphBuilder.randomFloats(3, 256, 1f), 16, 16).matMul("x", "w", "y").output("y")
        .writeTo(tmp);
    String modelId = upload(model);
    // A worker claimed the job and died: the row is RUNNING under a lease nobody renews.
    UUID id = UUID.randomUUID();
    OffsetDateTime now = OffsetDateTime.now(ZoneOffset.UTC);
    jdbc.sql("""
            insert into jobs (id, owner, state, model_id, spec, attempts, max_attempts, lease_owner, lease_expires_at,
                              created_at, started_at, updated_at)
            values (?, 'default', 'RUNNING', ?, cast(? as jsonb), 1, 3, 'dead-host:1:w0', ?, ?, ?, ?)""")
        .params(id, UUID.fromString(modelId),
            "{\"steps\":[{\"type\":\"quantize\",\"weights\":{\"bits\":8,\"symmetric\":true,\"granularity\":\"channel\"}}],"
                + "\"evaluationSamples\":16}",
            now.plusSeconds(1), now, now, now)
        .update();

    JsonNode job = api.awaitJob(id.toString(), Duration.ofSeconds(60));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    assertThat(job.get("attempts").asInt()).isEqualTo(2);
    assertThat(jdbc.sql("select storage_key from artifacts where job_id = ? and name = 'model.onnx'").param(id)
        .query(String.class).single()).contains("attempt-2");
    Path downloaded = tmp.resolve("rescued.onnx");
    api.download(artifact(job, "model.onnx").get("href").asString(), downloaded);
    try (var runner = new dev.modelpress.testing.OrtRunner(downloaded)) {
      float[] y = runner.run("y", "x", OnnxGraphBuilder.randomFloats(9, 16, 1f), 1, 16);
      assertThat(y).hasSize(16);
    }
  }

  private String upload(Path model) {
    Api.Response r = api.postFile("/v1/models", model);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    return r.json().get("id").asString();
  }

  private static JsonNode artifact(JsonNode job, String name) {
    for (JsonNode a : job.get("artifacts")) {
      if (a.get("name").asString().equals(name)) {
        return a;
      }
    }
    throw new AssertionError("no artifact " + name + " in " + job);
  }

  private static String sha256(byte[] bytes) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
  }
}
