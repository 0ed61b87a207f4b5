package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzWriter;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.FashionMnist;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
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
 * Data-aware structured pruning through the HTTP API on the committed Fashion-MNIST MLP with an
 * uploaded calibration dataset: a correlation job and an activation-ranked structured job, both
 * downloaded and run in ONNX Runtime.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.concurrency=1",
        "modelpress.worker.poll-interval=500ms"})
@ActiveProfiles("test")
class RedundancyPruningJobEndToEndTest {

  @LocalServerPort int port;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  @Test
  void correlationAndActivationJobsShrinkTheMlpAndItsDownloadedModelsKeepTheirAccuracy() throws Exception {
    Api.Response model = api.postFile("/v1/models", Classifier.fashionMlp());
    assertThat(model.status()).as(model.body()).isEqualTo(201);
    Path npz = tmp.resolve("calibration.npz");
    NpzWriter.write(npz, List.of(FashionMnist.trainSet(512).getFirst()), true);
    Api.Response dataset = api.postFile("/v1/datasets?name=fashion-calibration", npz);
    assertThat(dataset.status()).as(dataset.body()).isEqualTo(201);
    String modelId = model.json().get("id").asString();
    String datasetId = dataset.json().get("id").asString();
    List<NdArray> test = FashionMnist.testSet(2_000);

    JsonNode correlation = run("""
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

    JsonNode activation = run("""
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

  private JsonNode run(String body, Path downloaded) throws Exception {
    Api.Response submitted = api.postJson("/v1/jobs", body);
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    JsonNode job = api.awaitJob(submitted.json().get("id").asString(), Duration.ofMinutes(5));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    JsonNode report = null;
    for (JsonNode a : job.get("artifacts")) {
      if (a.get("name").asString().equals("model.onnx")) {
        api.download(a.get("href").asString(), downloaded);
      } else if (a.get("name").asString().equals("report.json")) {
        report = JsonMapper.builder().build().readTree(api.getBytes(a.get("href").asString()).body());
      }
    }
    return report;
  }
}
