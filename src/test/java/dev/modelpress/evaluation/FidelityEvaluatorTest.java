package dev.modelpress.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.json.JsonMapper;

class FidelityEvaluatorTest {

  private static final int FEATURES = 8;
  private static final int CLASSES = 4;
  // Not a multiple of the batch size used below, so the last batch is short.
  private static final int SAMPLES = 42;

  @TempDir static Path dir;

  private static FidelityEvaluator evaluator;
  private static float[][] x;
  private static float[][] w;
  private static float[] b;
  private static float[][] wCandidate;
  private static long[] labels;
  private static Path original;
  private static Path candidate;

  @BeforeAll
  static void buildClassifiers() throws Exception {
    Random random = new Random(7);
    x = gaussian(random, SAMPLES, FEATURES, 1);
    w = gaussian(random, FEATURES, CLASSES, 1);
    b = gaussian(random, 1, CLASSES, 0.1f)[0];
    wCandidate = plus(w, gaussian(random, FEATURES, CLASSES, 0.4f));
    // Labels from a third, "true" classifier, so neither model is always right.
    labels = argMaxRows(logits(x, plus(w, gaussian(random, FEATURES, CLASSES, 0.6f)), b));
    original = TestModels.write(TestModels.gemmClassifier(w, b), dir, "original.onnx");
    candidate = TestModels.write(TestModels.gemmClassifier(wCandidate, b), dir, "candidate.onnx");
    evaluator = new FidelityEvaluator();
  }

  @AfterAll
  static void closeEvaluator() {
    evaluator.close();
  }

  private static List<NdArray> dataset() {
    return List.of(TestModels.floatArray("x", x), TestModels.intArray("labels", DType.INT64, labels));
  }

  @Test
  void classifierAgreementAndAccuraciesEqualAnArgMaxComputedByHand() throws Exception {
    FidelityReport report = evaluator.compare(
        original, candidate, dataset(), EvaluationOptions.defaults().withBatchSize(4).withLatencyRuns(2, 20));

    double[][] a = logits(x, w, b);
    double[][] c = logits(x, wCandidate, b);
    long[] predictedA = argMaxRows(a);
    long[] predictedC = argMaxRows(c);
    int agree = 0;
    int correctA = 0;
    int correctC = 0;
    double maxError = 0;
    double cosineSum = 0;
    for (int i = 0; i < SAMPLES; i++) {
      agree += predictedA[i] == predictedC[i] ? 1 : 0;
      correctA += predictedA[i] == labels[i] ? 1 : 0;
      correctC += predictedC[i] == labels[i] ? 1 : 0;
      double dot = 0;
      double na = 0;
      double nc = 0;
      for (int k = 0; k < CLASSES; k++) {
        maxError = Math.max(maxError, Math.abs(a[i][k] - c[i][k]));
        dot += a[i][k] * c[i][k];
        na += a[i][k] * a[i][k];
        nc += c[i][k] * c[i][k];
      }
      cosineSum += dot / Math.sqrt(na * nc);
    }
    // The fixture must discriminate: the models disagree sometimes and differ in accuracy.
    assertThat(agree).isBetween(SAMPLES / 2, SAMPLES - 1);
    assertThat(correctA).isNotEqualTo(correctC);

    assertThat(report.samples()).isEqualTo(SAMPLES);
    OutputFidelity logits = report.output("logits");
    assertThat(logits.units()).isEqualTo(SAMPLES);
    assertThat(logits.unitShape()).containsExactly((long) CLASSES);
    assertThat(logits.candidateNonFinite()).isZero();
    ClassifierFidelity classifier = logits.classifier();
    assertThat(classifier.classes()).isEqualTo(CLASSES);
    assertThat(classifier.top1Agreement()).isEqualTo((double) agree / SAMPLES);
    assertThat(classifier.originalAccuracy()).isEqualTo((double) correctA / SAMPLES);
    assertThat(classifier.candidateAccuracy()).isEqualTo((double) correctC / SAMPLES);
    assertThat(classifier.accuracyDeltaPoints()).isCloseTo(100.0 * (correctC - correctA) / SAMPLES, within(1e-9));
    assertThat(logits.maxAbsError()).isCloseTo(maxError, within(1e-4));
    assertThat(logits.meanCosine()).isCloseTo(cosineSum / SAMPLES, within(1e-5));
    assertThat(logits.minCosine()).isLessThan(logits.meanCosine());
    System.out.printf("agreement %d/%d, accuracy %d vs %d, max error %.4f, mean cosine %.4f%n",
        agree, SAMPLES, correctA, correctC, maxError, cosineSum / SAMPLES);
  }

  @Test
  void latencyFiguresArePositiveOrderedAndGiveTheSpeedup() throws Exception {
    FidelityReport report = evaluator.compare(
        original, candidate, dataset(), EvaluationOptions.defaults().withBatchSize(4).withLatencyRuns(3, 25));

    for (Latency latency : List.of(report.original(), report.candidate())) {
      assertThat(latency.runs()).isEqualTo(25);
      assertThat(latency.batchSize()).isEqualTo(4);
      assertThat(latency.p50Millis()).isPositive();
      assertThat(latency.p95Millis()).isGreaterThanOrEqualTo(latency.p50Millis());
      assertThat(latency.meanMillis()).isPositive();
    }
    assertThat(report.speedup()).isEqualTo(report.original().p50Millis() / report.candidate().p50Millis());
    assertThat(report.intraOpThreads()).isEqualTo(1);
  }

  @Test
  void identicalModelsHaveCosineOneZeroErrorAndFullAgreement() throws Exception {
    FidelityReport report = evaluator.compare(original, original, dataset(), EvaluationOptions.defaults().withLatencyRuns(0, 0));

    OutputFidelity logits = report.output("logits");
    assertThat(logits.meanCosine()).isCloseTo(1.0, within(1e-12));
    assertThat(logits.minCosine()).isCloseTo(1.0, within(1e-12));
    assertThat(logits.maxAbsError()).isZero();
    assertThat(logits.meanAbsError()).isZero();
    assertThat(logits.classifier().top1Agreement()).isEqualTo(1.0);
    assertThat(logits.classifier().accuracyDeltaPoints()).isZero();
    assertThat(report.original()).isNull();
    assertThat(report.speedup()).isNull();
    assertThat(report.slower()).isFalse();
  }

  @Test
  void float64DatasetFeedsAFloat32ModelWithTheSameResults() throws Exception {
    EvaluationOptions options = EvaluationOptions.defaults().withBatchSize(5).withLatencyRuns(0, 0);
    FidelityReport asFloat = evaluator.compare(original, candidate, dataset(), options);
    FidelityReport asDouble = evaluator.compare(original, candidate,
        List.of(TestModels.doubleArray("x", x), TestModels.intArray("labels", DType.INT32, labels)), options);

    assertThat(asDouble.outputs()).isEqualTo(asFloat.outputs());
  }

  @Test
  void maxSamplesStopsTheEvaluationEarly() throws Exception {
    FidelityReport report = evaluator.compare(
        original, candidate, dataset(), EvaluationOptions.defaults().withBatchSize(4).withMaxSamples(10).withLatencyRuns(0, 0));

    assertThat(report.samples()).isEqualTo(10);
    assertThat(report.output("logits").units()).isEqualTo(10);
  }

  @Test
  void nanInTheCandidateIsCountedAsNonFiniteNotThrown() throws Exception {
    float[][] broken = plus(w, new float[FEATURES][CLASSES]);
    broken[0][0] = Float.NaN;
    Path nan = TestModels.write(TestModels.gemmClassifier(broken, b), dir, "nan.onnx");

    FidelityReport report = evaluator.compare(original, nan, dataset(), EvaluationOptions.defaults().withLatencyRuns(0, 0));

    OutputFidelity logits = report.output("logits");
    assertThat(logits.candidateNonFinite()).isEqualTo(SAMPLES);
    assertThat(logits.originalNonFinite()).isZero();
    assertThat(logits.meanCosine()).isNull();
    assertThat(logits.maxAbsError()).isNull();
    assertThat(logits.classifier().top1Agreement()).isZero();
    assertThat(logits.classifier().candidateAccuracy()).isZero();
  }

  @Test
  void candidateWithTwentyChainedMatMulsIsFlaggedSlower() throws Exception {
    Random random = new Random(11);
    float[][] wide = gaussian(random, 512, 10, 0.05f);
    ModelProto small = TestModels.gemmClassifier(wide, new float[10]);
    Path fast = TestModels.write(small, dir, "fast.onnx");
    Path slow = TestModels.write(TestModels.withIdentityMatMuls(small, 20), dir, "slow.onnx");
    List<NdArray> data = List.of(TestModels.floatArray("x", gaussian(random, 8, 512, 1)));

    FidelityReport report = evaluator.compare(fast, slow, data, EvaluationOptions.defaults().withLatencyRuns(5, 30));

    System.out.printf("fast p50 %.4f ms, slow p50 %.4f ms, speedup %.3f%n",
        report.original().p50Millis(), report.candidate().p50Millis(), report.speedup());
    assertThat(report.slower()).isTrue();
    assertThat(report.speedup()).isLessThan(0.5);
    // Multiplying by the identity changes nothing: the slowdown is not a fidelity loss.
    assertThat(report.output("logits").maxAbsError()).isLessThan(1e-5);
  }

  @Test
  void datasetWithoutAModelInputIsRejectedNamingBoth() {
    List<NdArray> data = List.of(TestModels.floatArray("features", x));

    assertThatThrownBy(() -> evaluator.compare(original, candidate, data, EvaluationOptions.defaults()))
        .isInstanceOf(EvaluationException.class)
        .hasMessageContaining("no array for model input 'x'")
        .hasMessageContaining("dataset arrays: features");
  }

  @Test
  void datasetWithTheWrongFeatureCountIsRejected() {
    List<NdArray> data = List.of(TestModels.floatArray("x", new float[3][FEATURES + 1]));

    assertThatThrownBy(() -> evaluator.compare(original, candidate, data, EvaluationOptions.defaults()))
        .isInstanceOf(EvaluationException.class)
        .hasMessageContaining("size 9 at dimension 1")
        .hasMessageContaining("fixes it to 8");
  }

  @Test
  void fixedBatchDimensionDecidesTheBatchSize() throws Exception {
    ModelProto model = TestModels.gemmClassifier(w, b);
    var graph = model.getGraph().toBuilder();
    var input = graph.getInput(0).toBuilder();
    input.getTypeBuilder().getTensorTypeBuilder().getShapeBuilder().getDimBuilder(0).setDimValue(4);
    graph.setInput(0, input);
    Path fixed = TestModels.write(model.toBuilder().setGraph(graph).build(), dir, "fixed-batch.onnx");

    assertThatThrownBy(() -> evaluator.compare(original, fixed, dataset(), EvaluationOptions.defaults()))
        .isInstanceOf(EvaluationException.class)
        .hasMessage("model input 'x' has a fixed batch dimension of 4; evaluate with batch size 4");
    FidelityReport report = evaluator.compare(original, fixed, dataset(),
        EvaluationOptions.defaults().withBatchSize(4).withLatencyRuns(0, 0));
    // 42 samples make 10 whole batches of 4; the last 2 samples cannot be fed.
    assertThat(report.samples()).isEqualTo(40);
    assertThat(report.output("logits").maxAbsError()).isZero();
  }

  @Test
  void modelOnnxRuntimeCannotLoadIsReportedWithoutItsPath() throws Exception {
    Path garbage = Files.write(dir.resolve("garbage.onnx"), new byte[] {1, 2, 3, 4, 5, 6, 7, 8});

    assertThatThrownBy(() -> evaluator.compare(original, garbage, dataset(), EvaluationOptions.defaults()))
        .isInstanceOf(EvaluationException.class)
        .hasMessageStartingWith("the candidate model cannot be loaded by ONNX Runtime: ")
        .hasMessageContaining("Load model from <candidate model> failed")
        .hasMessageNotContaining(dir.toString());
  }

  @Test
  void candidateThatFailsAtRunTimeIsNamedInTheError() throws Exception {
    Path failing = TestModels.write(
        TestModels.withReshapeTo(TestModels.gemmClassifier(w, b), 5, CLASSES), dir, "failing.onnx");

    assertThatThrownBy(() -> evaluator.compare(original, failing, dataset(), EvaluationOptions.defaults()))
        .isInstanceOf(EvaluationException.class)
        .hasMessageStartingWith("the candidate model failed in ONNX Runtime: ")
        .hasMessageContaining("reshape")
        .hasMessageNotContaining(dir.toString());
  }

  @Test
  void modelsWithDifferentOutputNamesAreRejected() throws Exception {
    ModelProto model = TestModels.gemmClassifier(w, b);
    var graph = model.getGraph().toBuilder();
    graph.setOutput(0, graph.getOutput(0).toBuilder().setName("scores"));
    graph.setNode(0, graph.getNode(0).toBuilder().setOutput(0, "scores"));
    Path renamed = TestModels.write(model.toBuilder().setGraph(graph).build(), dir, "renamed.onnx");

    assertThatThrownBy(() -> evaluator.compare(original, renamed, dataset(), EvaluationOptions.defaults()))
        .isInstanceOf(EvaluationException.class)
        .hasMessageContaining("the original has [logits], the candidate has [scores]");
  }

  @Test
  void reportSerialisesToJsonWithNullsForWhatDoesNotApply() throws Exception {
    FidelityReport report = evaluator.compare(original, candidate, List.of(TestModels.floatArray("x", x)),
        EvaluationOptions.defaults().withLatencyRuns(0, 0));

    String json = JsonMapper.builder().build().writeValueAsString(report);

    assertThat(json).contains("\"samples\":42", "\"top1Agreement\":", "\"originalAccuracy\":null",
        "\"original\":null", "\"speedup\":null", "\"slower\":false");
  }

  private static float[][] gaussian(Random random, int rows, int cols, float scale) {
    float[][] m = new float[rows][cols];
    for (float[] row : m) {
      for (int j = 0; j < cols; j++) {
        row[j] = (float) random.nextGaussian() * scale;
      }
    }
    return m;
  }

  private static float[][] plus(float[][] a, float[][] b) {
    float[][] m = new float[a.length][a[0].length];
    for (int i = 0; i < a.length; i++) {
      for (int j = 0; j < a[0].length; j++) {
        m[i][j] = a[i][j] + b[i][j];
      }
    }
    return m;
  }

  private static double[][] logits(float[][] x, float[][] w, float[] b) {
    double[][] out = new double[x.length][b.length];
    for (int i = 0; i < x.length; i++) {
      for (int k = 0; k < b.length; k++) {
        double s = b[k];
        for (int j = 0; j < w.length; j++) {
          s += (double) x[i][j] * w[j][k];
        }
        out[i][k] = s;
      }
    }
    return out;
  }

  private static long[] argMaxRows(double[][] m) {
    long[] out = new long[m.length];
    for (int i = 0; i < m.length; i++) {
      int best = 0;
      for (int k = 1; k < m[i].length; k++) {
        if (m[i][k] > m[i][best]) {
          best = k;
        }
      }
      out[i] = best;
    }
    return out;
  }
}
