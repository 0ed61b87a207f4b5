package dev.modelpress.evaluation;

import java.util.Arrays;

/**
 * Whether the candidate is slower or faster than the original, judged from paired runs rather than
 * from two medians alone.
 *
 * <p>The evaluator times the two models alternately (original then candidate, candidate then
 * original, …), so each pair of runs saw nearly the same machine load. The ratio {@code candidate /
 * original} of each pair cancels most of that load; the median of the ratios has a
 * distribution-free confidence interval from order statistics (no assumption on how run times are
 * distributed). The candidate is called {@link Verdict#SLOWER} only when even the low end of that
 * interval exceeds {@code 1 + }{@link #MIN_EFFECT}, so a noisy shared machine widens the interval
 * instead of raising false alarms; a single fixed threshold on the two medians (5% was tried) did
 * raise them on a loaded 2-core machine.
 *
 * @param pairs paired runs
 * @param medianRatio median of {@code candidate / original} over the pairs
 * @param ratioLow low end of the confidence interval of that median
 * @param ratioHigh high end of the interval
 * @param confidence the interval's nominal coverage
 * @param verdict {@code SLOWER}, {@code FASTER} or {@code SAME} (no difference beyond the noise)
 */
public record LatencyComparison(
    int pairs, double medianRatio, double ratioLow, double ratioHigh, double confidence, Verdict verdict) {

  /** A difference smaller than this fraction is not worth reporting, however certain. */
  public static final double MIN_EFFECT = 0.02;

  /** The z value of a two-sided 95% interval. */
  private static final double Z95 = 1.959964;

  /** The outcome of the comparison. */
  public enum Verdict {
    SLOWER,
    FASTER,
    SAME
  }

  /**
   * Compares paired run times.
   *
   * @param originalNanos the original's run times
   * @param candidateNanos the candidate's, {@code candidateNanos[i]} timed next to {@code originalNanos[i]}
   */
  static LatencyComparison of(long[] originalNanos, long[] candidateNanos) {
    int n = originalNanos.length;
    if (n == 0 || candidateNanos.length != n) {
      throw new IllegalArgumentException("need the same positive number of runs of both models");
    }
    double[] ratios = new double[n];
    for (int i = 0; i < n; i++) {
      ratios[i] = (double) candidateNanos[i] / Math.max(1, originalNanos[i]);
    }
    Arrays.sort(ratios);
    double median = n % 2 == 1 ? ratios[n / 2] : (ratios[n / 2 - 1] + ratios[n / 2]) / 2;
    // Ranks (1-based) of the order statistics that bracket the median with ~95% coverage.
    double half = Z95 * Math.sqrt(n) / 2;
    int lowRank = Math.max(1, (int) Math.floor(n / 2.0 - half));
    int highRank = Math.min(n, (int) Math.ceil(n / 2.0 + half) + 1);
    double low = ratios[lowRank - 1];
    double high = ratios[highRank - 1];
    Verdict verdict = low > 1 + MIN_EFFECT ? Verdict.SLOWER
        : high < 1 / (1 + MIN_EFFECT) ? Verdict.FASTER
        : Verdict.SAME;
    return new LatencyComparison(n, median, low, high, 0.95, verdict);
  }
}
