package dev.modelpress.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Per-class accuracy and confusion matrices of both classifiers, checked against a count by hand. */
class ClassifierConfusionTest {

  private static final int FEATURES = 6;
  private static final int CLASSES = 5;
  private static final int SAMPLES = 300;

  @TempDir Path dir;

  @Test
  void confusionMatricesAndPerClassDeltasMatchAHandCount() throws Exception {
    Random random = new Random(21);
    float[][] x = gaussian(random, SAMPLES, FEATURES, 1);
    float[][] w = gaussian(random, FEATURES, CLASSES, 1);
    float[] b = new float[CLASSES];
    float[][] noisy = gaussian(random, FEATURES, CLASSES, 0.5f);
    for (int i = 0; i < FEATURES; i++) {
      for (int k = 0; k < CLASSES; k++) {
        noisy[i][k] += w[i][k];
      }
    }
    int[] predictedByOriginal = argMax(x, w);
    int[] predictedByCandidate = argMax(x, noisy);
    // Labels: mostly the original's prediction, every 4th one shifted, so both models make mistakes.
    long[] labels = new long[SAMPLES];
    for (int i = 0; i < SAMPLES; i++) {
      labels[i] = i % 4 == 0 ? (predictedByOriginal[i] + 1) % CLASSES : predictedByOriginal[i];
    }
    labels[7] = 99; // out of range: counted in overall accuracy, left out of per-class figures
    long[][] expectedOriginal = new long[CLASSES][CLASSES];
    long[][] expectedCandidate = new long[CLASSES][CLASSES];
    for (int i = 0; i < SAMPLES; i++) {
      if (labels[i] < CLASSES) {
        expectedOriginal[(int) labels[i]][predictedByOriginal[i]]++;
        expectedCandidate[(int) labels[i]][predictedByCandidate[i]]++;
      }
    }
    Path original = TestModels.write(TestModels.gemmClassifier(w, b), dir, "original.onnx");
    Path candidate = TestModels.write(TestModels.gemmClassifier(noisy, b), dir, "candidate.onnx");
    List<NdArray> data = List.of(TestModels.floatArray("x", x), TestModels.intArray("labels", DType.INT64, labels));

    ClassifierFidelity c;
    try (FidelityEvaluator evaluator = new FidelityEvaluator()) {
      c = evaluator.compare(original, candidate, data, EvaluationOptions.defaults().withBatchSize(16)
          .withLatencyRuns(0, 0)).output("logits").classifier();
    }

    for (int t = 0; t < CLASSES; t++) {
      for (int p = 0; p < CLASSES; p++) {
        assertThat(c.originalConfusion().get(t).get(p)).as("original[%d][%d]", t, p).isEqualTo(expectedOriginal[t][p]);
        assertThat(c.candidateConfusion().get(t).get(p)).as("candidate[%d][%d]", t, p)
            .isEqualTo(expectedCandidate[t][p]);
      }
    }
    assertThat(c.perClass()).hasSize(CLASSES);
    long supportTotal = 0;
    for (ClassifierFidelity.ClassAccuracy k : c.perClass()) {
      long support = sum(expectedOriginal[k.label()]);
      supportTotal += support;
      assertThat(k.support()).isEqualTo(support);
      double o = expectedOriginal[k.label()][k.label()] / (double) support;
      double cand = expectedCandidate[k.label()][k.label()] / (double) support;
      assertThat(k.originalAccuracy()).isCloseTo(o, within(1e-12));
      assertThat(k.candidateAccuracy()).isCloseTo(cand, within(1e-12));
      assertThat(k.deltaPoints()).isCloseTo((cand - o) * 100, within(1e-9));
    }
    assertThat(supportTotal).isEqualTo(SAMPLES - 1);
    // The shifted labels cap the original at about 75%; the noisy candidate differs somewhere.
    assertThat(c.originalAccuracy()).isCloseTo(224.0 / SAMPLES, within(0.01));
    assertThat(c.perClass().stream().mapToDouble(ClassifierFidelity.ClassAccuracy::deltaPoints)
        .map(Math::abs).max().orElseThrow()).isGreaterThan(0);
  }

  @Test
  void withoutLabelsThereAreNoPerClassFigures() throws Exception {
    Random random = new Random(3);
    float[][] x = gaussian(random, 20, FEATURES, 1);
    float[][] w = gaussian(random, FEATURES, CLASSES, 1);
    Path original = TestModels.write(TestModels.gemmClassifier(w, new float[CLASSES]), dir, "o.onnx");
    try (FidelityEvaluator evaluator = new FidelityEvaluator()) {
      ClassifierFidelity c = evaluator.compare(original, original, List.of(TestModels.floatArray("x", x)),
          EvaluationOptions.defaults().withLatencyRuns(0, 0)).output("logits").classifier();
      assertThat(c.top1Agreement()).isEqualTo(1.0);
      assertThat(c.perClass()).isNull();
      assertThat(c.originalConfusion()).isNull();
    }
  }

  private static long sum(long[] row) {
    long s = 0;
    for (long v : row) {
      s += v;
    }
    return s;
  }

  private static int[] argMax(float[][] x, float[][] w) {
    int[] out = new int[x.length];
    for (int i = 0; i < x.length; i++) {
      double best = Double.NEGATIVE_INFINITY;
      for (int k = 0; k < w[0].length; k++) {
        double s = 0;
        for (int j = 0; j < w.length; j++) {
          s += (double) x[i][j] * w[j][k];
        }
        if (s > best) {
          best = s;
          out[i] = k;
        }
      }
    }
    return out;
  }

  static float[][] gaussian(Random random, int rows, int cols, float scale) {
    float[][] m = new float[rows][cols];
    for (float[] row : m) {
      for (int j = 0; j < cols; j++) {
        row[j] = (float) random.nextGaussian() * scale;
      }
    }
    return m;
  }
}
