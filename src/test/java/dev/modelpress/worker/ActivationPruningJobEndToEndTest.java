package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzWriter;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.MiniLm;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A SparseGPT prune job through the HTTP API on the real all-MiniLM-L6-v2 with an uploaded
 * calibration dataset: queue, worker, report, and the downloaded model running in ONNX Runtime.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.concurrency=1",
        "modelpress.worker.poll-interval=500ms"})
@ActiveProfiles("test")
class ActivationPruningJobEndToEndTest {

  @LocalServerPort int port;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  @Test
  void sparseGptJobWithACalibrationDatasetPrunesHalfOfEachSelectedWeightAndItsModelRunsInOrt() throws Exception {
    Api.Response model = api.postFile("/v1/models", MiniLm.modelFile());
    assertThat(model.status()).as(model.body()).isEqualTo(201);
    List<String> sentences = new ArrayList<>();
    for (int i = 0; i < MiniLm.sentences().size(); i += 2) {
      sentences.add(MiniLm.sentences().get(i));
    }
    Path npz = tmp.resolve("calibration.npz");
    NpzWriter.write(npz, MiniLm.encode(sentences, 64), true);
    Api.Response dataset = api.postFile("/v1/datasets?name=calibration", npz);
    assertThat(dataset.status()).as(dataset.body()).isEqualTo(201);

    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","calibrationDatasetId":"%s","calibrationSamples":8,
         "steps":[{"type":"prune","method":"sparsegpt","sparsity":0.5,"include":["onnx::MatMul_79\\\\d"]}]}"""
        .formatted(model.json().get("id").asString(), dataset.json().get("id").asString()));
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    JsonNode job = api.awaitJob(submitted.json().get("id").asString(), Duration.ofMinutes(5));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");

    Path downloaded = tmp.resolve("pruned.onnx");
    JsonNode report = null;
    for (JsonNode a : job.get("artifacts")) {
      if (a.get("name").asString().equals("model.onnx")) {
        api.download(a.get("href").asString(), downloaded);
      } else if (a.get("name").asString().equals("report.json")) {
        report = JsonMapper.builder().build().readTree(api.getBytes(a.get("href").asString()).body());
      }
    }
    JsonNode tensors = report.get("stepReports").get(0).get("tensors");
    assertThat(tensors.size()).isGreaterThanOrEqualTo(3);
    for (JsonNode t : tensors) {
      assertThat(t.get("sparsityAfter").asDouble()).as(t.toString()).isEqualTo(0.5);
    }
    List<NdArray> heldOut = MiniLm.encode(List.of(MiniLm.sentences().get(1), MiniLm.sentences().get(3)), 64);
    float[][] reference = MiniLm.sentenceEmbeddings(MiniLm.modelFile(), heldOut);
    float[][] pruned = MiniLm.sentenceEmbeddings(downloaded, heldOut);
    double cosine = (MiniLm.cosine(reference[0], pruned[0]) + MiniLm.cosine(reference[1], pruned[1])) / 2;
    System.out.printf("API sparsegpt 50%% on onnx::MatMul_79x: held-out sentence cosine %.5f%n", cosine);
    assertThat(cosine).isGreaterThan(0.9).isLessThan(1.0);
  }
}
