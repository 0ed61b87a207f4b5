package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.job.SearchSpecs;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Dominance in (bytes, latency, metric) with the metric oriented by the constraint. */
class SearchParetoTest {

  private static final SearchSpecs.Search DROP = new SearchSpecs.Search("size", "accuracyDrop", 1.0, true, 10, 60,
      List.of());
  private static final SearchSpecs.Search COSINE = new SearchSpecs.Search("size", "cosine", 0.99, false, 10, 60,
      List.of());

  private static SearchRunner.Trial trial(long bytes, double p50, double metric) {
    return new SearchRunner.Trial(0, List.of(), List.of(), bytes, p50, metric, false, null, Map.of());
  }

  @Test
  void smallerFasterAndCloserDominatesButATradeOffDoesNot() {
    assertThat(SearchRunner.dominates(DROP, trial(100, 1.0, 0.5), trial(200, 2.0, 0.7))).isTrue();
    assertThat(SearchRunner.dominates(DROP, trial(100, 1.0, 0.5), trial(100, 1.0, 0.5))).as("equal").isFalse();
    // Smaller but with a larger accuracy drop: a trade-off, both stay on the front.
    assertThat(SearchRunner.dominates(DROP, trial(100, 1.0, 2.0), trial(200, 1.0, 0.5))).isFalse();
    assertThat(SearchRunner.dominates(DROP, trial(200, 1.0, 0.5), trial(100, 1.0, 2.0))).isFalse();
  }

  @Test
  void forCosineHigherIsBetterAndForDropLowerIs() {
    assertThat(SearchRunner.dominates(COSINE, trial(100, 1.0, 0.999), trial(100, 1.0, 0.99))).isTrue();
    assertThat(SearchRunner.dominates(DROP, trial(100, 1.0, 0.999), trial(100, 1.0, 0.99))).isFalse();
    assertThat(COSINE.meets(0.99)).isTrue();
    assertThat(COSINE.meets(0.9899)).isFalse();
    assertThat(DROP.meets(1.0)).isTrue();
    assertThat(DROP.shortfall(3.5)).isEqualTo(2.5);
    assertThat(DROP.meets(Double.NaN)).isFalse();
  }
}
