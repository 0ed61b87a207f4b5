package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.FashionMnist;
import dev.modelpress.testing.WorkerApiTest;
import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/**
 * Data-aware structured pruning through the HTTP API on the committed Fashion-MNIST MLP with an
 * uploaded calibration dataset: a correlation job and an activation-ranked structured job, both
 * downloaded and run in ONNX Runtime.
 */
class RedundancyPruningJobEndToEndTest extends WorkerApiTest {

  @Test
  void correlationAndActivationJobsShrinkTheMlpAndItsDownloadedModelsKeepTheirAccuracy() throws Exception {
    String modelId = uploadModel(Classifier.fashionMlp());
    String datasetId = uploadDataset("fashion-calibration", List.of(FashionMnist.trainSet(512).getFirst()));
    List<NdArray> test = FashionMnist.testSet(2_000);

    JsonNode correlation = runJob("""
        {"modelId":"%s","calibrationDatasetId":"%s","calibrationSamples":512,
         "steps":[{"type":"prune","method":"correlation","sparsity":0.5}]}""".formatted(modelId, datasetId),
        tmp.resolve("correlation.onnx"));
    JsonNode details = correlation.get("stepReports").get(0).get("details");
    assertThat(details.get("modelParametersAfter").asLong()).isEqualTo(109_386);
    assertThat(details.get("layers").size()).isEqualTo(2);
    JsonNode latency = correlation.get("latency");
    assertThat(latency.get("original").get("runs").asInt()).isGreaterThanOrEqualTo(50);
    assertThat(latency.get("candidate").get("p50Millis").asDouble()).isPositive();
    double corrAccuracy = Classifier.accuracy(tmp.resolve("correlation.onnx"), test);

    JsonNode activation = runJob("""
        {"modelId":"%s","calibrationDatasetId":"%s","calibrationSamples":512,
         "steps":[{"type":"prune","method":"structured","sparsity":0.25,"unit":"neurons","criterion":"activation"}]}"""
        .formatted(modelId, datasetId), tmp.resolve("activation.onnx"));
    assertThat(activation.get("stepReports").get(0).get("details").get("meanAbsActivation").size()).isEqualTo(2);
    double actAccuracy = Classifier.accuracy(tmp.resolve("activation.onnx"), test);
    double dense = Classifier.accuracy(Classifier.fashionMlp(), test);
    System.out.printf("API on the Fashion MLP (2,000 test images): dense %.4f, correlation 50%% %.4f (%d B), "
        + "activation-ranked 25%% %.4f; correlation ORT p50 %.3f -> %.3f ms%n", dense, corrAccuracy,
        Files.size(tmp.resolve("correlation.onnx")), actAccuracy, latency.get("original").get("p50Millis").asDouble(),
        latency.get("candidate").get("p50Millis").asDouble());
    assertThat(corrAccuracy).isGreaterThan(dense - 0.03);
    assertThat(actAccuracy).isGreaterThan(0.5);
    assertThat(Files.size(tmp.resolve("correlation.onnx"))).isLessThan(Files.size(Classifier.fashionMlp()) / 2);
  }
}
