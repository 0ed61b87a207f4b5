package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.api.dto.JobStep;
import dev.modelpress.compression.OnnxPipeline;
import dev.modelpress.compression.Progress;
import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzWriter;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.job.JobSpecs;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.FashionMnist;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Search jobs through the real service (HTTP, PostgreSQL queue, worker, ONNX Runtime) on a real
 * classifier: the committed Fashion-MNIST CNN of the test kit, evaluated on 1,000 real test images.
 * Every model the search returns is measured again in ONNX Runtime by {@link Classifier#accuracy}.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.poll-interval=500ms"})
@ActiveProfiles("test")
class SearchJobTest {

  private static final Duration TIMEOUT = Duration.ofMinutes(3);
  private static final int EVAL = 1000;
  private static final JsonMapper JSON = JsonMapper.builder().build();

  @TempDir static Path shared;
  static Path modelFile;
  static Path dataFile;
  static double baseline;

  @LocalServerPort int port;
  @TempDir Path tmp;
  Api api;

  static List<NdArray> test;

  @BeforeAll
  static void realClassifier() throws Exception {
    modelFile = Classifier.fashionCnn();
    test = FashionMnist.testSet(EVAL);
    dataFile = shared.resolve("fashion-test.npz");
    NpzWriter.write(dataFile, test, false);
    baseline = Classifier.accuracy(modelFile, test);
    System.out.printf("fashion CNN: accuracy %.2f%% on %d test images, %d bytes%n", baseline * 100, EVAL,
        Files.size(modelFile));
    assertThat(baseline).as("the committed CNN, far above chance").isGreaterThan(0.85);
  }

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  private static final String SPACE = """
      [
        [{"type":"quantize","weights":{"granularity":"channel"}}],
        [{"type":"quantize","weights":{"granularity":"tensor"}}],
        [{"type":"prune","method":"magnitude","sparsity":0.5}],
        [{"type":"prune","method":"structured","sparsity":0.25}],
        [{"type":"prune","method":"structured","sparsity":0.25},{"type":"quantize"}],
        [{"type":"prune","method":"structured","sparsity":0.5},{"type":"quantize"}],
        [{"type":"prune","method":"structured","sparsity":0.95},{"type":"quantize"}],
        [{"type":"prune","method":"magnitude","sparsity":0.8},{"type":"quantize"}]
      ]""";

  @Test
  void accuracyGatedSearchReturnsAModelWithinOnePointNoLargerThanTheSmallestPassingUniformRecipe() throws Exception {
    String model = upload();
    String data = dataset(dataFile);
    JsonNode job = run("""
        {"modelId":"%s","evaluationDatasetId":"%s","evaluationSamples":%d,
         "steps":[{"type":"search","objective":"size","constraint":{"metric":"accuracyDrop","max":1.0},
                   "budget":{"trials":20,"seconds":120},"space":%s}]}""".formatted(model, data, EVAL, SPACE));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    JsonNode search = report(job).get("search");
    printTrials(search);

    Path best = tmp.resolve("best.onnx");
    assertThat(api.download("/v1/jobs/" + job.get("id").asString() + "/artifacts/model.onnx", best).status())
        .isEqualTo(200);
    double accuracy = Classifier.accuracy(best, test);
    double drop = (baseline - accuracy) * 100;
    System.out.printf("search best: %d bytes (original %d), accuracy %.2f%%, drop %.2f points%n", Files.size(best),
        Files.size(modelFile), accuracy * 100, drop);
    assertThat(search.get("feasible").asBoolean()).isTrue();
    assertThat(drop).as("re-measured in ONNX Runtime").isLessThanOrEqualTo(1.0 + 1e-9);
    assertThat(search.get("best").get("bytes").asLong()).isEqualTo(Files.size(best));

    // Every recipe of the space applied uniformly, measured independently of the service.
    List<List<JobStep>> recipes = JSON.readValue(SPACE,
        JSON.getTypeFactory().constructCollectionType(List.class,
            JSON.getTypeFactory().constructCollectionType(List.class, JobStep.class)));
    long smallestPassing = Long.MAX_VALUE;
    for (int r = 0; r < recipes.size(); r++) {
      Path file = tmp.resolve("uniform-" + r + ".onnx");
      OnnxModels.write(OnnxPipeline.run(OnnxModels.read(modelFile),
          JobSpecs.toSpecs(JobSpecs.normalize(recipes.get(r))), Progress.NONE).model(), file);
      double a = Classifier.accuracy(file, test);
      boolean passes = (baseline - a) * 100 <= 1.0;
      System.out.printf("uniform recipe %d: %d bytes, accuracy %.2f%%, drop %.2f, %s%n", r, Files.size(file), a * 100,
          (baseline - a) * 100, passes ? "passes" : "fails");
      if (passes) {
        smallestPassing = Math.min(smallestPassing, Files.size(file));
      }
    }
    assertThat(smallestPassing).as("some uniform recipe passes").isLessThan(Long.MAX_VALUE);
    assertThat(Files.size(best)).isLessThanOrEqualTo(smallestPassing);
    assertThat(Files.size(best)).as("really compressed").isLessThan(Files.size(modelFile) / 3);
    // The Pareto front holds the chosen model and only measured trials.
    assertThat(search.get("pareto").size()).isGreaterThanOrEqualTo(1);
    assertThat(job.get("progress").get("item").asInt()).isEqualTo(search.get("trialsDone").asInt());

    // The report page draws the trials table with the chosen candidate marked.
    var page = api.send(api.request("/v1/jobs/" + job.get("id").asString() + "/report").header("Accept", "text/html"));
    assertThat(page.status()).isEqualTo(200);
    assertThat(page.body()).contains("id=\"search-trials\"");
    assertThat(page.body().split("<tr class=\"best\">", -1)).hasSize(2);
    assertThat(page.body().split("<tr", -1).length - 1).as("header + one row per trial")
        .isGreaterThanOrEqualTo(1 + search.get("trials").size());
  }

  @Test
  void impossibleConstraintEndsWithinBudgetSaysNothingPassedAndOffersTheClosest() throws Exception {
    String model = upload();
    String data = dataset(dataFile);
    long t0 = System.nanoTime();
    JsonNode job = run("""
        {"modelId":"%s","evaluationDatasetId":"%s","evaluationSamples":%d,
         "steps":[{"type":"search","constraint":{"metric":"accuracyDrop","max":0},
                   "budget":{"trials":3,"seconds":20},"space":[
           [{"type":"prune","method":"structured","sparsity":0.95}],
           [{"type":"prune","method":"structured","sparsity":0.9},{"type":"quantize"}],
           [{"type":"prune","method":"magnitude","sparsity":0.97},{"type":"quantize","weights":{"granularity":"tensor"}}],
           [{"type":"prune","method":"magnitude","sparsity":0.99}],
           [{"type":"prune","method":"structured","sparsity":0.97}]]}]}""".formatted(model, data, EVAL));
    double seconds = (System.nanoTime() - t0) / 1e9;
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    JsonNode search = report(job).get("search");
    printTrials(search);
    System.out.printf("impossible search: %.1f s wall, %s s in the worker, stopped by %s%n", seconds,
        search.get("seconds"), search.get("stoppedBy").asString());
    assertThat(search.get("feasible").asBoolean()).isFalse();
    assertThat(search.get("message").asString()).contains("no candidate met the constraint accuracyDrop <= 0");
    assertThat(search.get("trialsDone").asInt()).isBetween(1, 3);
    assertThat(search.get("seconds").asDouble()).as("within the 20 s budget plus one trial").isLessThan(30);
    JsonNode closest = search.get("closest");
    assertThat(closest.size()).isBetween(1, 3);
    double previous = 0;
    for (JsonNode c : closest) {
      assertThat(c.get("metric").asDouble()).as("a real drop, in points").isGreaterThan(0);
      assertThat(c.get("metric").asDouble()).as("closest first").isGreaterThanOrEqualTo(previous);
      assertThat(c.get("bytes").asLong()).isPositive();
      previous = c.get("metric").asDouble();
    }
    assertThat(names(job)).containsExactly("report.json");
    assertThat(job.get("report").has("bytesAfter")).isFalse();
  }

  @Test
  void cancellingARunningSearchKeepsTheBestModelFoundSoFar() throws Exception {
    String model = upload();
    String data = dataset(dataFile);
    StringBuilder space = new StringBuilder("[");
    for (int i = 0; i < 40; i++) {
      space.append(i == 0 ? "" : ",").append("""
          [{"type":"prune","method":"magnitude","sparsity":%.3f},{"type":"quantize"}]""".formatted(0.01 * i));
    }
    space.append("]");
    String id = api.postJson("/v1/jobs", """
        {"modelId":"%s","evaluationDatasetId":"%s","evaluationSamples":%d,
         "steps":[{"type":"search","constraint":{"metric":"accuracyDrop","max":1.0},
                   "budget":{"trials":40,"seconds":600},"space":%s}]}""".formatted(model, data, EVAL, space))
        .json().get("id").asString();
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    String message = "";
    while (System.nanoTime() < deadline && !message.contains("best so far")) {
      JsonNode progress = api.get("/v1/jobs/" + id).json().path("progress");
      message = progress.path("message").asString("");
      Api.sleep(50);
    }
    System.out.println("cancelling at: " + message);
    assertThat(api.postJson("/v1/jobs/" + id + "/cancel", "").status()).isEqualTo(202);
    JsonNode job = api.awaitJob(id, TIMEOUT);
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("CANCELLED");
    assertThat(names(job)).containsExactlyInAnyOrder("model.onnx", "report.json");
    Path best = tmp.resolve("kept.onnx");
    assertThat(api.download("/v1/jobs/" + id + "/artifacts/model.onnx", best).status()).isEqualTo(200);
    double drop = (baseline - Classifier.accuracy(best, test)) * 100;
    Path reportFile = tmp.resolve("report.json");
    api.download("/v1/jobs/" + id + "/artifacts/report.json", reportFile);
    JsonNode search = JSON.readTree(reportFile.toFile()).get("search");
    System.out.printf("cancelled after %d of %d trials; kept %d bytes, drop %.2f points%n",
        search.get("trialsDone").asInt(), search.get("trialsPlanned").asInt(), Files.size(best), drop);
    assertThat(search.get("stoppedBy").asString()).isEqualTo("cancelled");
    assertThat(search.get("trialsDone").asInt()).isLessThan(40);
    assertThat(drop).isLessThanOrEqualTo(1.0 + 1e-9);
    assertThat(Files.size(best)).isLessThan(Files.size(modelFile) / 3);
  }

  @Test
  void withoutASpaceTheDefaultRecipesThatFitTheModelAreStoredAndSearched() throws Exception {
    String model = upload();
    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","evaluationDatasetId":"%s","evaluationSamples":500,
         "steps":[{"type":"search","objective":"latency","constraint":{"metric":"top1Agreement","min":0.97},
                   "budget":{"trials":4,"seconds":60}}]}""".formatted(model, dataset(dataFile)));
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    JsonNode space = submitted.json().get("steps").get(0).get("space");
    List<String> defaults = new ArrayList<>();
    for (List<JobStep> recipe : dev.modelpress.job.SearchSpecs.defaultSpace()) {
      defaults.add(signature(JSON.valueToTree(JobSpecs.normalize(recipe))));
    }
    System.out.println("default space for the CNN: " + space.size() + " of " + defaults.size() + " recipes");
    assertThat(space.size()).isBetween(defaults.size() / 2, defaults.size());
    for (JsonNode recipe : space) {
      assertThat(defaults).as("a default recipe, stored as searched").contains(signature(recipe));
    }
    JsonNode job = api.awaitJob(submitted.json().get("id").asString(), TIMEOUT);
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    JsonNode search = report(job).get("search");
    printTrials(search);
    assertThat(search.get("trialsDone").asInt()).isEqualTo(4);
    assertThat(search.get("stoppedBy").asString()).isEqualTo("trials");
    assertThat(search.get("feasible").asBoolean()).isTrue();
    assertThat(search.get("best").get("metric").asDouble()).isGreaterThanOrEqualTo(0.97);
    // The chosen one is the fastest feasible trial.
    double fastest = Double.MAX_VALUE;
    for (JsonNode t : search.get("trials")) {
      if (t.get("feasible").asBoolean()) {
        fastest = Math.min(fastest, t.get("latencyP50Millis").asDouble());
      }
    }
    assertThat(search.get("best").get("latencyP50Millis").asDouble()).isEqualTo(fastest);
  }

  @Test
  void rejectsInvalidRecipesNamingTheFieldAndSearchesWithoutTheDataTheyNeed() throws Exception {
    String model = upload();
    Api.Response bad = api.postJson("/v1/jobs", """
        {"modelId":"%s","evaluationDatasetId":"%s",
         "steps":[{"type":"search","constraint":{"metric":"accuracyDrop","max":1},
                   "space":[[{"type":"quantize"}],[{"type":"prune","sparsity":0.5},{"type":"prune","sparsity":1.5}]]}]}"""
        .formatted(model, dataset(dataFile)));
    assertThat(bad.status()).as(bad.body()).isEqualTo(422);
    assertThat(bad.json().get("errors").get(0).get("field").asString()).isEqualTo("steps[0].space[1][1].sparsity");

    Api.Response noData = api.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"search","constraint":{"metric":"cosine","min":0.99}}]}""".formatted(model));
    assertThat(noData.status()).isEqualTo(422);
    assertThat(noData.json().get("errors").get(0).get("field").asString()).isEqualTo("evaluationDatasetId");

    Path unlabelled = tmp.resolve("unlabelled.npz");
    ByteBuffer x = ByteBuffer.allocate(4 * 784 * 4).order(ByteOrder.LITTLE_ENDIAN);
    NpzWriter.write(unlabelled, List.of(new NdArray("input", DType.FLOAT32, new long[] {4, 1, 28, 28}, x)), false);
    Api.Response noLabels = api.postJson("/v1/jobs", """
        {"modelId":"%s","evaluationDatasetId":"%s",
         "steps":[{"type":"search","constraint":{"metric":"accuracyDrop","max":1}}]}"""
        .formatted(model, dataset(unlabelled)));
    assertThat(noLabels.status()).isEqualTo(422);
    assertThat(noLabels.body()).contains("accuracyDrop needs a labels array");

    Api.Response notAlone = api.postJson("/v1/jobs", """
        {"modelId":"%s","evaluationDatasetId":"%s","steps":[{"type":"quantize"},
          {"type":"search","constraint":{"metric":"cosine","min":0.99}}]}""".formatted(model, dataset(dataFile)));
    assertThat(notAlone.status()).isEqualTo(422);
    assertThat(notAlone.body()).contains("a search must be the job's only step");
  }

  /** What a recipe does, ignoring how empty fields are written. */
  private static String signature(JsonNode recipe) {
    StringBuilder out = new StringBuilder();
    for (JsonNode step : recipe) {
      for (String f : List.of("type", "method", "sparsity", "n", "m", "criterion", "target")) {
        out.append(step.path(f).isNull() ? "" : step.path(f).asString("")).append('|');
      }
      out.append(step.path("weights").path("bits").asString("")).append(step.path("weights").path("granularity")
          .asString("")).append(';');
    }
    return out.toString();
  }

  private static void printTrials(JsonNode search) {
    for (JsonNode s : search.get("sensitivity")) {
      System.out.printf("  sensitivity %-60s %-12s metric %s breaks %s%n", s.get("step").asString().substring(0,
          Math.min(60, s.get("step").asString().length())), s.get("tensor").asString(), s.get("metric"),
          s.get("breaksConstraint"));
    }
    int i = 0;
    for (JsonNode t : search.get("trials")) {
      System.out.printf("  trial %d recipe %d: %d bytes, p50 %s ms, metric %s, feasible %s%s%n", i++,
          t.get("recipe").asInt(), t.get("bytes").asLong(), t.get("latencyP50Millis"), t.get("metric"),
          t.get("feasible").asBoolean(), t.path("error").isString() ? ", error " + t.get("error").asString() : "");
    }
    System.out.println("  pareto " + search.get("pareto") + ", stopped by " + search.get("stoppedBy").asString());
  }

  private JsonNode report(JsonNode job) throws Exception {
    Path file = tmp.resolve("report-" + job.get("id").asString() + ".json");
    assertThat(api.download("/v1/jobs/" + job.get("id").asString() + "/artifacts/report.json", file).status())
        .isEqualTo(200);
    return JSON.readTree(file.toFile());
  }

  private static List<String> names(JsonNode job) {
    List<String> names = new ArrayList<>();
    job.get("artifacts").forEach(a -> names.add(a.get("name").asString()));
    return names;
  }

  private JsonNode run(String body) {
    Api.Response submitted = api.postJson("/v1/jobs", body);
    assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
    return api.awaitJob(submitted.json().get("id").asString(), TIMEOUT);
  }

  private String upload() {
    Api.Response r = api.postFile("/v1/models", modelFile);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    return r.json().get("id").asString();
  }

  private String dataset(Path file) {
    Api.Response r = api.postFile("/v1/datasets", file);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    return r.json().get("id").asString();
  }
}
