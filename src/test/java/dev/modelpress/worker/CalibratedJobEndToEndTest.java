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
 * Data-aware quantization through the HTTP API on the real all-MiniLM-L6-v2: a calibration dataset
 * uploaded as .npz, jobs through the PostgreSQL queue and a real worker, reports with the
 * sensitivity table and activation ranges, and the 422s of a job that needs calibration data
 * without it.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.concurrency=1",
        "modelpress.worker.poll-interval=500ms"})
@ActiveProfiles("test")
class CalibratedJobEndToEndTest {

  private static final Duration JOB_TIMEOUT = Duration.ofMinutes(5);

  @LocalServerPort int port;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  @Test
  void mixedPrecisionJobWithACalibrationDatasetReportsTheSensitivityTable() throws Exception {
    String model = uploadModel();
    String calibration = uploadDataset("calibration", half(0));
    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","calibrationDatasetId":"%s","calibrationSamples":8,
         "steps":[{"type":"quantize","weights":{"bits":4},"include":["onnx::MatMul_79\\\\d"],
                   "target":{"metric":"cosine","min":0.995,"higherBits":32}}]}""".formatted(model, calibration));
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    assertThat(submitted.json().get("calibrationDatasetId").asString()).isEqualTo(calibration);
    assertThat(submitted.json().get("steps").get(0).get("target").get("higherBits").asInt()).isEqualTo(32);

    JsonNode job = api.awaitJob(submitted.json().get("id").asString(), JOB_TIMEOUT);
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    JsonNode step = report(job).get("stepReports").get(0);
    JsonNode sensitivity = step.get("calibration").get("sensitivity");
    int selected = step.get("tensors").size();
    assertThat(selected).isGreaterThanOrEqualTo(3);
    assertThat(sensitivity.size()).isEqualTo(selected);
    for (int i = 0; i < sensitivity.size(); i++) {
      assertThat(sensitivity.get(i).get("tensor").asString()).startsWith("onnx::MatMul_79");
      assertThat(sensitivity.get(i).get("error").asDouble()).isGreaterThan(0);
      if (i > 0) {
        assertThat(sensitivity.get(i).get("error").asDouble())
            .isLessThanOrEqualTo(sensitivity.get(i - 1).get("error").asDouble());
      }
    }
    JsonNode mixed = step.get("calibration").get("mixed");
    assertThat(mixed.get("uniform").asDouble()).isLessThan(0.995);
    assertThat(mixed.get("achieved").asDouble()).isGreaterThanOrEqualTo(0.995);
    // Layer 0's FFN weights are the ones 4 bits hurt most: they stay float.
    assertThat(mixed.get("kept").get(0).asString()).isEqualTo(sensitivity.get(0).get("tensor").asString());
    for (JsonNode t : step.get("tensors")) {
      boolean kept = false;
      for (JsonNode k : mixed.get("kept")) {
        kept |= k.asString().equals(t.get("name").asString());
      }
      assertThat(t.get("bits").asInt()).as(t.get("name").asString()).isEqualTo(kept ? 32 : 4);
    }
    System.out.printf("API mixed precision on layer 0: %d tensors, kept %s, uniform %.5f -> %.5f; sensitivity %s%n",
        selected, mixed.get("kept"), mixed.get("uniform").asDouble(), mixed.get("achieved").asDouble(), sensitivity);
  }

  @Test
  void staticInt8JobCalibratesActivationsAndKeepsEmbeddings() throws Exception {
    String model = uploadModel();
    String calibration = uploadDataset("calibration", half(0));
    String evaluation = uploadDataset("evaluation", half(1));
    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","calibrationDatasetId":"%s","evaluationDatasetId":"%s","calibrationSamples":16,
         "steps":[{"type":"quantize","activations":{"calibrator":"minmax"}}]}""".formatted(model, calibration, evaluation));
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    JsonNode job = api.awaitJob(submitted.json().get("id").asString(), JOB_TIMEOUT);
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    JsonNode full = report(job);
    JsonNode ranges = full.get("stepReports").get(0).get("calibration").get("activations");
    assertThat(ranges.size()).isEqualTo(48);
    assertThat(full.get("stepReports").get(0).get("calibration").get("samples").asInt()).isEqualTo(16);
    // The report's cosine compares last_hidden_state per sample, padding positions included; the
    // sentence embedding (mean over real tokens) is what users of this model compare.
    double outputCosine = job.get("report").get("meanCosine").asDouble();
    Path downloaded = tmp.resolve("static.onnx");
    for (JsonNode a : job.get("artifacts")) {
      if (a.get("name").asString().equals("model.onnx")) {
        api.download(a.get("href").asString(), downloaded);
      }
    }
    List<NdArray> heldOut = MiniLm.encode(half(1), 64);
    float[][] reference = MiniLm.sentenceEmbeddings(MiniLm.modelFile(), heldOut);
    float[][] quantized = MiniLm.sentenceEmbeddings(downloaded, heldOut);
    double sum = 0;
    for (int i = 0; i < reference.length; i++) {
      sum += MiniLm.cosine(reference[i], quantized[i]);
    }
    double sentenceCosine = sum / reference.length;
    double size = (double) java.nio.file.Files.size(downloaded) / java.nio.file.Files.size(MiniLm.modelFile());
    System.out.printf("API static int8 (minmax): report output cosine %.5f, independent sentence cosine %.5f on %d "
        + "held-out sentences, file %.1f%% of fp32%n", outputCosine, sentenceCosine, half(1).size(), 100 * size);
    assertThat(sentenceCosine).isGreaterThanOrEqualTo(0.99);
    assertThat(outputCosine).isGreaterThanOrEqualTo(0.95);
    assertThat(size).isLessThan(0.30);
  }

  @Test
  void aStepNeedingCalibrationWithoutADatasetIs422NamingCalibrationDatasetId() {
    String model = uploadModel();
    Api.Response r = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"quantize","method":"gptq","weights":{"bits":4}}]}""".formatted(model));
    assertThat(r.status()).as(r.body()).isEqualTo(422);
    assertThat(r.problemType()).endsWith("/validation-failed");
    assertThat(fields(r)).containsExactly("calibrationDatasetId");
    assertThat(r.json().get("errors").get(0).get("message").asString()).contains("steps[0]").contains("GPTQ");
  }

  @Test
  void invalidDataAwareFieldsAndAnUnfittingCalibrationDatasetAre422WithTheirFields() throws Exception {
    String model = uploadModel();
    Path npz = tmp.resolve("wrong.npz");
    NpzWriter.write(npz, List.of(MiniLm.encode(List.of("hello"), 8).getFirst()), true);
    Api.Response upload = api.postFile("/v1/datasets?name=wrong", npz);
    assertThat(upload.status()).isEqualTo(201);
    Api.Response r = api.postJson("/v1/jobs", """
        {"modelId":"%s","calibrationDatasetId":"%s","steps":[
          {"type":"quantize","activations":{"calibrator":"kl"}},
          {"type":"quantize","method":"awq"},
          {"type":"quantize","weights":{"bits":4},"target":{"metric":"cosine"}},
          {"type":"quantize","method":"gptq","weights":{"bits":4,"granularity":"group","groupSize":32,"range":"lsq"}}]}"""
        .formatted(model, upload.json().get("id").asString()));
    assertThat(r.status()).as(r.body()).isEqualTo(422);
    assertThat(fields(r)).contains("steps[0].activations.calibrator", "steps[1].method", "steps[2].target.min",
        "steps[3].weights.range");

    Api.Response unfit = api.postJson("/v1/jobs", """
        {"modelId":"%s","calibrationDatasetId":"%s","steps":[{"type":"quantize","activations":{}}]}"""
        .formatted(model, upload.json().get("id").asString()));
    assertThat(unfit.status()).as(unfit.body()).isEqualTo(422);
    assertThat(fields(unfit)).contains("calibrationDatasetId");
    assertThat(unfit.body()).contains("attention_mask");
  }

  private static List<String> fields(Api.Response r) {
    List<String> out = new ArrayList<>();
    r.json().get("errors").forEach(e -> out.add(e.get("field").asString()));
    return out;
  }

  private JsonNode report(JsonNode job) {
    for (JsonNode a : job.get("artifacts")) {
      if (a.get("name").asString().equals("report.json")) {
        return JsonMapper.builder().build().readTree(api.getBytes(a.get("href").asString()).body());
      }
    }
    throw new AssertionError("no report in " + job);
  }

  private String uploadModel() {
    Api.Response r = api.postFile("/v1/models", MiniLm.modelFile());
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    return r.json().get("id").asString();
  }

  private String uploadDataset(String name, List<String> sentences) throws Exception {
    List<NdArray> arrays = MiniLm.encode(sentences, 64);
    Path npz = tmp.resolve(name + ".npz");
    NpzWriter.write(npz, arrays, true);
    Api.Response r = api.postFile("/v1/datasets?name=" + name, npz);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    return r.json().get("id").asString();
  }

  private static List<String> half(int parity) {
    List<String> out = new ArrayList<>();
    for (int i = parity; i < MiniLm.sentences().size(); i += 2) {
      out.add(MiniLm.sentences().get(i));
    }
    return out;
  }
}
