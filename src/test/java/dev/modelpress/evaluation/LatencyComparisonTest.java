package dev.modelpress.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.modelpress.format.npy.NdArray;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The paired slower/faster verdict: flags real slowdowns, not noise. */
class LatencyComparisonTest {

  @TempDir Path dir;

  @Test
  void consistentFiftyPercentSlowdownIsSlower() {
    long[] original = new long[50];
    long[] candidate = new long[50];
    Random random = new Random(1);
    for (int i = 0; i < 50; i++) {
      // Load noise hits both runs of a pair alike; the candidate does 1.5× the work.
      double load = 1 + 2 * random.nextDouble();
      original[i] = (long) (1_000_000 * load);
      candidate[i] = (long) (1_500_000 * load);
    }
    LatencyComparison c = LatencyComparison.of(original, candidate);
    assertThat(c.verdict()).isEqualTo(LatencyComparison.Verdict.SLOWER);
    assertThat(c.medianRatio()).isCloseTo(1.5, within(1e-3));
    assertThat(c.ratioLow()).isGreaterThan(1.49);
  }

  @Test
  void halvedRunTimeIsFaster() {
    long[] original = {100, 110, 120, 130, 140, 150, 160, 170, 180, 190};
    long[] candidate = {50, 55, 60, 65, 70, 75, 80, 85, 90, 95};
    assertThat(LatencyComparison.of(original, candidate).verdict()).isEqualTo(LatencyComparison.Verdict.FASTER);
  }

  @Test
  void noisyRunsOfEqualModelsAreTheSameEvenWhenTheirMediansDifferByMoreThanFivePercent() {
    long[] original = new long[50];
    long[] candidate = new long[50];
    Random random = new Random(5);
    for (int i = 0; i < 50; i++) {
      // Independent ±40% noise on each run: the medians can easily differ by 5%+.
      original[i] = (long) (1_000_000 * (0.6 + 0.8 * random.nextDouble()));
      candidate[i] = (long) (1_000_000 * (0.6 + 0.8 * random.nextDouble()));
    }
    LatencyComparison c = LatencyComparison.of(original, candidate);
    assertThat(c.verdict()).isEqualTo(LatencyComparison.Verdict.SAME);
    assertThat(c.ratioLow()).isLessThan(1.0);
    assertThat(c.ratioHigh()).isGreaterThan(1.0);
  }

  @Test
  void intervalUsesTheOrderStatisticsOfA95PercentMedianInterval() {
    long[] original = new long[50];
    long[] candidate = new long[50];
    for (int i = 0; i < 50; i++) {
      original[i] = 1000;
      candidate[i] = 1000 + 10L * i; // ratios 1.00, 1.01, …, 1.49
    }
    LatencyComparison c = LatencyComparison.of(original, candidate);
    // n = 50: ranks floor(25 - 6.93) = 18 and ceil(25 + 6.93) + 1 = 33 (1-based).
    assertThat(c.ratioLow()).isCloseTo(1.17, within(1e-9));
    assertThat(c.ratioHigh()).isCloseTo(1.32, within(1e-9));
    assertThat(c.medianRatio()).isCloseTo(1.245, within(1e-9));
    assertThat(c.pairs()).isEqualTo(50);
  }

  @Test
  void aModelAgainstItselfInOnnxRuntimeIsNotFlaggedSlower() throws Exception {
    Random random = new Random(13);
    float[][] w = ClassifierConfusionTest.gaussian(random, 256, 10, 0.05f);
    Path model = TestModels.write(TestModels.withIdentityMatMuls(TestModels.gemmClassifier(w, new float[10]), 4),
        dir, "m.onnx");
    List<NdArray> data = List.of(TestModels.floatArray("x", ClassifierConfusionTest.gaussian(random, 4, 256, 1)));
    try (FidelityEvaluator evaluator = new FidelityEvaluator()) {
      FidelityReport report = evaluator.compare(model, model, data, EvaluationOptions.defaults().withLatencyRuns(5, 60));
      System.out.printf("self vs self: median ratio %.3f [%.3f, %.3f] -> %s%n", report.latencyComparison().medianRatio(),
          report.latencyComparison().ratioLow(), report.latencyComparison().ratioHigh(),
          report.latencyComparison().verdict());
      assertThat(report.slower()).isFalse();
      assertThat(report.latencyComparison().verdict()).isNotEqualTo(LatencyComparison.Verdict.SLOWER);
      assertThat(report.latencyComparison().pairs()).isEqualTo(60);
    }
  }
}
