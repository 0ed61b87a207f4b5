package dev.modelpress.compression;

/**
 * Statistics of one activation over calibration batches, and the ranges the calibrators choose
 * from them.
 *
 * <p>One pass: the observer keeps the minimum, the maximum and a 2,048-bin histogram of |x| over
 * [0, R). When a batch holds a larger |x|, R doubles (adjacent bins merge pairwise, which is
 * exact) until it fits, so R stays below twice the true maximum and at least 1,024 bins cover the
 * data, without a second pass over the calibration set.
 *
 * <p>Calibrators (facts from the TensorRT and ONNX Runtime calibrators; this code is ours):
 * <ul>
 *   <li>minmax: the observed [min, max];
 *   <li>percentile: clip |x| at the given percentile of the histogram (linear within the bin);
 *   <li>entropy: clip |x| at the threshold T = i·binWidth (128 ≤ i ≤ 2048) that minimises
 *       KL(P‖Q), where P is the histogram up to bin i with the clipped tail added to its last bin
 *       and Q is the first i bins merged into 128 levels and spread back evenly over the bins that
 *       were non-empty.
 * </ul>
 * A clipping threshold T gives the range [max(min, −T), min(max, T)].
 */
final class ActivationObserver {

  static final int BINS = 2048;
  static final int LEVELS = 128;

  private double min = Double.POSITIVE_INFINITY;
  private double max = Double.NEGATIVE_INFINITY;
  private final long[] histogram = new long[BINS];
  private double range;
  private long count;

  void add(float[] values) {
    double batchMax = 0;
    for (float v : values) {
      if (!Float.isFinite(v)) {
        throw new CompressionException("an activation holds NaN or infinity on the calibration data");
      }
      min = Math.min(min, v);
      max = Math.max(max, v);
      batchMax = Math.max(batchMax, Math.abs(v));
    }
    count += values.length;
    if (batchMax == 0 && range == 0) {
      histogram[0] += values.length;
      return;
    }
    if (range == 0) {
      range = batchMax * (1 + 1e-6);
    }
    while (batchMax >= range) {
      for (int i = 0; i < BINS / 2; i++) {
        histogram[i] = histogram[2 * i] + histogram[2 * i + 1];
      }
      java.util.Arrays.fill(histogram, BINS / 2, BINS, 0);
      range *= 2;
    }
    double perBin = BINS / range;
    for (float v : values) {
      histogram[Math.min(BINS - 1, (int) (Math.abs(v) * perBin))]++;
    }
  }

  double min() {
    return count == 0 ? 0 : min;
  }

  double max() {
    return count == 0 ? 0 : max;
  }

  /** The [low, high] range the calibrator chooses. */
  double[] range(CalibratedQuantizeSpec.Calibrator calibrator, double percentile) {
    if (count == 0 || range == 0) {
      return new double[] {min(), max()};
    }
    double threshold = switch (calibrator) {
      case MINMAX -> Double.POSITIVE_INFINITY;
      case PERCENTILE -> percentileThreshold(percentile);
      case ENTROPY -> entropyThreshold();
    };
    return new double[] {Math.max(min, -threshold), Math.min(max, threshold)};
  }

  double percentileThreshold(double percentile) {
    double wanted = count * percentile / 100.0;
    double binWidth = range / BINS;
    long cumulative = 0;
    for (int i = 0; i < BINS; i++) {
      if (cumulative + histogram[i] >= wanted) {
        double within = histogram[i] == 0 ? 1 : (wanted - cumulative) / histogram[i];
        return (i + within) * binWidth;
      }
      cumulative += histogram[i];
    }
    return range;
  }

  double entropyThreshold() {
    int last = BINS;
    while (last > 0 && histogram[last - 1] == 0) {
      last--;
    }
    double binWidth = range / BINS;
    if (last <= LEVELS) {
      // Fewer occupied bins than levels: the grid resolves every bin, so nothing needs clipping.
      return last * binWidth;
    }
    long[] suffix = new long[BINS + 1];
    for (int i = BINS - 1; i >= 0; i--) {
      suffix[i] = suffix[i + 1] + histogram[i];
    }
    double best = Double.POSITIVE_INFINITY;
    int bestBins = last;
    double[] p = new double[BINS];
    double[] q = new double[BINS];
    for (int bins = LEVELS; bins <= last; bins++) {
      for (int j = 0; j < bins; j++) {
        p[j] = histogram[j];
      }
      p[bins - 1] += suffix[bins];
      java.util.Arrays.fill(q, 0, bins, 0);
      for (int level = 0; level < LEVELS; level++) {
        int from = level * bins / LEVELS;
        int to = (level + 1) * bins / LEVELS;
        long total = 0;
        int nonEmpty = 0;
        for (int j = from; j < to; j++) {
          total += histogram[j];
          nonEmpty += histogram[j] != 0 ? 1 : 0;
        }
        if (nonEmpty > 0) {
          double share = (double) total / nonEmpty;
          for (int j = from; j < to; j++) {
            q[j] = histogram[j] != 0 ? share : 0;
          }
        }
      }
      double kl = divergence(p, q, bins);
      if (kl < best) {
        best = kl;
        bestBins = bins;
      }
    }
    return bestBins * binWidth;
  }

  /** KL(P‖Q) of the first {@code n} entries, both normalised, zeros smoothed with ε = 1e-4 as TensorRT does. */
  private static double divergence(double[] p, double[] q, int n) {
    smooth(p, n);
    smooth(q, n);
    double kl = 0;
    for (int i = 0; i < n; i++) {
      if (p[i] > 0) {
        kl += p[i] * Math.log(p[i] / q[i]);
      }
    }
    return kl;
  }

  private static void smooth(double[] d, int n) {
    double sum = 0;
    int zeros = 0;
    for (int i = 0; i < n; i++) {
      sum += d[i];
      zeros += d[i] == 0 ? 1 : 0;
    }
    int nonZeros = n - zeros;
    double eps = 1e-4;
    double take = nonZeros == 0 ? 0 : eps * zeros / nonZeros;
    for (int i = 0; i < n; i++) {
      double v = sum == 0 ? 0 : d[i] / sum;
      d[i] = v == 0 ? eps : v - take;
      if (d[i] <= 0) {
        d[i] = eps;
      }
    }
  }
}
