package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.WorkerApiTest;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/**
 * A SparseGPT prune job through the HTTP API on the real all-MiniLM-L6-v2 with an uploaded
 * calibration dataset: queue, worker, report, and the downloaded model running in ONNX Runtime.
 */
class ActivationPruningJobEndToEndTest extends WorkerApiTest {

  @Test
  void sparseGptJobWithACalibrationDatasetPrunesHalfOfEachSelectedWeightAndItsModelRunsInOrt() throws Exception {
    String modelId = uploadModel(MiniLm.modelFile());
    List<String> sentences = new ArrayList<>();
    for (int i = 0; i < MiniLm.sentences().size(); i += 2) {
      sentences.add(MiniLm.sentences().get(i));
    }
    String datasetId = uploadDataset("calibration", MiniLm.encode(sentences, 64));

    Path downloaded = tmp.resolve("pruned.onnx");
    JsonNode report = runJob("""
        {"modelId":"%s","calibrationDatasetId":"%s","calibrationSamples":8,
         "steps":[{"type":"prune","method":"sparsegpt","sparsity":0.5,"include":["onnx::MatMul_79\\\\d"]}]}"""
        .formatted(modelId, datasetId), downloaded);
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
