package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzWriter;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.FashionMnist;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Static int8 quantization (weights and activations) of the committed Fashion-MNIST CNN through the
 * HTTP API: activation ranges calibrated on training images, the job's evaluation on all 10,000
 * test images, and the downloaded model measured again, independently, in ONNX Runtime.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.concurrency=1",
        "modelpress.worker.poll-interval=500ms"})
@ActiveProfiles("test")
class FashionStaticQuantizationJobTest {

  private static final Duration TIMEOUT = Duration.ofMinutes(5);
  private static final int CALIBRATION = 256;

  @LocalServerPort int port;
  @TempDir Path tmp;

  @Test
  void staticInt8LosesAtMostHalfAPointOnTheTestSetAndTheReportMatchesOnnxRuntime() throws Exception {
    Api api = new Api(port);
    Api.Response model = api.postFile("/v1/models", Classifier.fashionCnn());
    assertThat(model.status()).as(model.body()).isEqualTo(201);
    // Calibration from the training split, evaluation on the whole test split: disjoint images.
    String calibration = dataset(api, "fashion-train", FashionMnist.trainSet(CALIBRATION));
    List<NdArray> test = FashionMnist.testSet(FashionMnist.TEST_SIZE);
    String evaluation = dataset(api, "fashion-test", test);

    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","calibrationDatasetId":"%s","calibrationSamples":%d,
         "evaluationDatasetId":"%s","evaluationSamples":%d,
         "steps":[{"type":"quantize","activations":{"calibrator":"minmax"}}]}"""
        .formatted(model.json().get("id").asString(), calibration, CALIBRATION, evaluation, FashionMnist.TEST_SIZE));
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    JsonNode job = api.awaitJob(submitted.json().get("id").asString(), TIMEOUT);
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");

    Path downloaded = tmp.resolve("fashion-static.onnx");
    JsonNode report = null;
    for (JsonNode a : job.get("artifacts")) {
      if (a.get("name").asString().equals("model.onnx")) {
        api.download(a.get("href").asString(), downloaded);
      } else if (a.get("name").asString().equals("report.json")) {
        report = JsonMapper.builder().build().readTree(api.getBytes(a.get("href").asString()).body());
      }
    }
    assertThat(report).isNotNull();
    JsonNode calibrated = report.get("stepReports").get(0).get("calibration");
    assertThat(calibrated.get("method").asString()).isEqualTo("static");
    assertThat(calibrated.get("samples").asInt()).isEqualTo(CALIBRATION);
    assertThat(calibrated.get("activations").size()).isGreaterThanOrEqualTo(4);

    // The independent run: both models on all 10,000 test images in a fresh ONNX Runtime session.
    double original = Classifier.accuracy(Classifier.fashionCnn(), test);
    double quantized = Classifier.accuracy(downloaded, test);
    JsonNode summary = job.get("report");
    System.out.printf("fashion CNN static int8 (minmax, %d training images): ORT accuracy %.2f%% -> %.2f%% "
        + "(%.2f points) on %d test images; report %s; file %d -> %d bytes; %s%n", CALIBRATION, 100 * original,
        100 * quantized, 100 * (original - quantized), test.getFirst().shape()[0], summary,
        Files.size(Classifier.fashionCnn()), Files.size(downloaded),
        report.get("stepReports").get(0).get("summary").asString());
    assertThat(original - quantized).isLessThanOrEqualTo(0.005);
    // The report's figures are the same 10,000 images through the same runtime: equal up to rounding.
    assertThat(summary.get("accuracyBefore").asDouble()).isCloseTo(original, within(1e-9));
    assertThat(summary.get("accuracyAfter").asDouble()).isCloseTo(quantized, within(1e-9));
    assertThat(Files.size(downloaded)).isLessThan(Files.size(Classifier.fashionCnn()) / 3);
  }

  private String dataset(Api api, String name, List<NdArray> arrays) throws Exception {
    Path npz = tmp.resolve(name + ".npz");
    NpzWriter.write(npz, arrays, false);
    Api.Response r = api.postFile("/v1/datasets?name=" + name, npz);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    return r.json().get("id").asString();
  }
}
