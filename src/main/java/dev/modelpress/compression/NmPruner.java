package dev.modelpress.compression;

import java.util.List;

/**
 * N:M semi-structured pruning: in every group of {@code m} consecutive weights along a tensor's
 * reduction (input) axis, keep the {@code n} of largest magnitude and zero the rest. That is the
 * pattern sparse tensor cores accelerate (2:4 on NVIDIA Ampere and later): each output is a dot
 * product whose every run of m inputs has at most n non-zero weights.
 *
 * <p>The reduction axis follows the consumer, see {@link #reductionAxis}. Ties in magnitude keep
 * the earlier element, so the result is deterministic.
 */
final class NmPruner {

  private NmPruner() {}

  /**
   * The input (reduction) axis of a weight for its consumer, written {@code OpType:inputIndex}:
   * MatMul B {@code [.., K, N]} axis rank-2; MatMul A {@code [.., M, K]} the last axis; Gemm B axis
   * 0 ({@code [K, N]}) or 1 with transB ({@code [N, K]}); Gemm A axis 1 (0 with transA); Conv W
   * {@code [O, C, kh, kw]} axis 1, the input channels, as sparse kernels lay a filter out
   * channels-last; ConvTranspose W {@code [C, O, ...]} axis 0. {@code null} for other uses.
   */
  static Integer reductionAxis(String consumer, int rank, boolean transposed) {
    if (rank < 2) {
      return null;
    }
    return switch (consumer) {
      case "MatMul:1" -> rank - 2;
      case "MatMul:0" -> rank - 1;
      case "Gemm:1" -> transposed ? 1 : 0;
      case "Gemm:0" -> transposed ? 0 : 1;
      case "Conv:1" -> 1;
      case "ConvTranspose:1" -> 0;
      default -> null;
    };
  }

  /**
   * Prunes {@code w} (row-major, {@code shape}) in place along {@code axis}; returns how many
   * elements it zeroed.
   *
   * @throws CompressionException if the axis length is not a multiple of {@code m}
   */
  static long prune(String tensor, float[] w, List<Long> shape, int axis, int n, int m) {
    long k = shape.get(axis);
    if (k % m != 0) {
      throw new CompressionException("tensor '" + tensor + "' has " + k + " weights along its input axis " + axis
          + ", not a multiple of m = " + m + "; N:M pruning needs whole groups (exclude it or choose another m)");
    }
    long outer = 1;
    for (int i = 0; i < axis; i++) {
      outer *= shape.get(i);
    }
    long inner = 1;
    for (int i = axis + 1; i < shape.size(); i++) {
      inner *= shape.get(i);
    }
    int[] order = new int[m];
    float[] mag = new float[m];
    long zeroed = 0;
    for (long o = 0; o < outer; o++) {
      for (long g = 0; g < k; g += m) {
        for (long i = 0; i < inner; i++) {
          long base = (o * k + g) * inner + i;
          for (int j = 0; j < m; j++) {
            mag[j] = Math.abs(w[(int) (base + j * inner)]);
            order[j] = j;
          }
          // Partial selection sort: the first n positions end up holding the n largest, ties to
          // the earlier index. m is small (4, 8, 16), so this beats any general sort.
          for (int a = 0; a < n; a++) {
            int best = a;
            for (int b = a + 1; b < m; b++) {
              int ob = order[b];
              int obest = order[best];
              if (mag[ob] > mag[obest] || (mag[ob] == mag[obest] && ob < obest)) {
                best = b;
              }
            }
            int t = order[a];
            order[a] = order[best];
            order[best] = t;
          }
          for (int a = n; a < m; a++) {
            int at = (int) (base + order[a] * inner);
            zeroed += w[at] != 0f ? 1 : 0;
            w[at] = 0f;
          }
        }
      }
    }
    return zeroed;
  }
}
