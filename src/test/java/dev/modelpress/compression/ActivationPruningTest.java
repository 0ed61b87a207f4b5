package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.testing.MiniLm;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The Wanda and SparseGPT kernels on a synthetic layer with correlated, unevenly scaled inputs, and validation. */
class ActivationPruningTest {

  static final int K = 64;
  static final int N = 16;

  /**
   * H = 2/n·XᵀX for rows whose features have scales 0.1..6.4 (in shuffled order, as in real layers:
   * SparseGPT prunes the same fraction of every block of inputs, so inputs sorted by scale would
   * force it to prune large inputs) and share a common component.
   */
  static double[] hessian(Random random, int rows) {
    List<Integer> order = new java.util.ArrayList<>(java.util.stream.IntStream.range(0, K).boxed().toList());
    java.util.Collections.shuffle(order, random);
    double[] x = new double[rows * K];
    for (int r = 0; r < rows; r++) {
      double common = random.nextGaussian();
      for (int j = 0; j < K; j++) {
        x[r * K + j] = (0.1 + 0.1 * order.get(j)) * (random.nextGaussian() + 0.7 * common);
      }
    }
    double[] h = new double[K * K];
    for (int r = 0; r < rows; r++) {
      for (int a = 0; a < K; a++) {
        for (int b = 0; b < K; b++) {
          h[a * K + b] += 2.0 / rows * x[r * K + a] * x[r * K + b];
        }
      }
    }
    return h;
  }

  @Test
  void bothKernelsReachExactlyHalfPerOutputWithLowerLayerErrorThanMagnitude() {
    Random random = new Random(7);
    double[] h = hessian(random, 512);
    double[] w = new double[K * N];
    for (int i = 0; i < w.length; i++) {
      w[i] = random.nextGaussian();
    }
    double[] wanda = w.clone();
    ActivationPruning.wanda(wanda, h, K, N, K / 2);
    double[] sparseGpt = w.clone();
    ActivationPruning.sparseGpt(sparseGpt, h, K, N, 0.5, 16, Gptq.DEFAULT_DAMPENING);
    double[] magnitude = ActivationPruning.magnitudePerOutput(w, K, N, K / 2);
    for (double[] pruned : List.of(wanda, sparseGpt)) {
      for (int c = 0; c < N; c++) {
        int zeros = 0;
        for (int j = 0; j < K; j++) {
          zeros += pruned[j * N + c] == 0 ? 1 : 0;
        }
        assertThat(zeros).isEqualTo(K / 2);
      }
    }
    double eMag = ActivationPruning.relativeError(h, w, magnitude, K, N);
    double eWanda = ActivationPruning.relativeError(h, w, wanda, K, N);
    double eSparseGpt = ActivationPruning.relativeError(h, w, sparseGpt, K, N);
    System.out.printf("synthetic 64x16 layer at 50%%: relative layer error magnitude %.4f, wanda %.4f, sparsegpt %.4f%n",
        eMag, eWanda, eSparseGpt);
    assertThat(eWanda).isLessThan(0.8 * eMag);
    assertThat(eSparseGpt).isLessThan(eWanda);
  }

  @Test
  void wandaAndSparseGptWithoutCalibrationDataAreAViolationOfCalibrationDatasetIdNamingTheStep() throws Exception {
    var summary = OnnxModels.summarize(OnnxModels.read(MiniLm.modelFile()));
    PruneSpec wanda = new PruneSpec(PruneSpec.WANDA, 0.5, null, PruneSpec.Scope.LAYER, List.of(), List.of());
    PruneSpec sparseGpt = new PruneSpec(PruneSpec.SPARSEGPT, null, 0.1, PruneSpec.Scope.LAYER, List.of(), List.of());
    List<Violation> v = SpecValidator.validate(List.of(wanda, sparseGpt), summary, false);
    assertThat(v).extracting(Violation::field)
        .containsExactly("calibrationDatasetId", "calibrationDatasetId", "steps[1].threshold", "steps[1].sparsity");
    assertThat(v.get(0).message()).startsWith("steps[0] (wanda pruning)");
    assertThat(SpecValidator.validate(List.of(wanda), summary, true)).isEmpty();
  }
}
