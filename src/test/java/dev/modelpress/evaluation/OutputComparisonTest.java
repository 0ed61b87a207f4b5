package dev.modelpress.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

class OutputComparisonTest {

  @Test
  void nonFiniteSamplesAreCountedAndLeftOutOfTheStatistics() {
    OutputComparison comparison = new OutputComparison("y", "FLOAT");
    double[] original = {1, 0, 0, 1, 3, 4};
    double[] candidate = {1, 0, Double.NaN, 1, 3, 3};

    comparison.add(original, candidate, new long[] {3, 2}, 3, new long[] {0, 1, 1});
    OutputFidelity result = comparison.result();

    assertThat(result.units()).isEqualTo(3);
    assertThat(result.candidateNonFinite()).isEqualTo(1);
    // Samples 0 (identical) and 2: cos([3,4],[3,3]) = 21 / (5 * sqrt(18)).
    double cosine = 21 / (5 * Math.sqrt(18));
    assertThat(result.meanCosine()).isCloseTo((1 + cosine) / 2, within(1e-12));
    assertThat(result.minCosine()).isCloseTo(cosine, within(1e-12));
    assertThat(result.maxAbsError()).isEqualTo(1.0);
    assertThat(result.meanAbsError()).isCloseTo(1.0 / 4, within(1e-12));
    // Predictions: original 0, 1, 1; candidate 0, none, 1 (argmax of [3,3] is the first).
    assertThat(result.classifier().top1Agreement()).isCloseTo(1.0 / 3, within(1e-12));
    assertThat(result.classifier().originalAccuracy()).isEqualTo(1.0);
    assertThat(result.classifier().candidateAccuracy()).isCloseTo(1.0 / 3, within(1e-12));
    assertThat(result.classifier().accuracyDeltaPoints()).isCloseTo(-200.0 / 3, within(1e-9));
  }

  @Test
  void outputsWithoutABatchDimensionAreComparedPerBatch() {
    OutputComparison comparison = new OutputComparison("total", "DOUBLE");

    comparison.add(new double[] {2}, new double[] {2.5}, new long[] {}, 4, null);
    comparison.add(new double[] {0, 0}, new double[] {0, 0}, new long[] {2}, 4, null);
    OutputFidelity result = comparison.result();

    assertThat(result.units()).isEqualTo(2);
    assertThat(result.unitShape()).isEmpty();
    assertThat(result.maxAbsError()).isEqualTo(0.5);
    // Two zero vectors are identical, so their cosine is 1.
    assertThat(result.minCosine()).isEqualTo(1.0);
    assertThat(result.classifier()).isNull();
  }
}
