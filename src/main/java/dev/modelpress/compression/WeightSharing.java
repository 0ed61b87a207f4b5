package dev.modelpress.compression;

import java.util.Arrays;

/**
 * Weight sharing by 1-D k-means (Deep Compression's second stage): the non-zero weights of one
 * tensor are clustered into at most {@code k} centroids and each is replaced by its centroid, so
 * the tensor holds at most k distinct non-zero values and can be stored as a codebook plus
 * log2(k)-bit indices. Zeros are not clustered and stay exactly zero, keeping a pruned tensor's
 * sparsity.
 *
 * <p>Centroids start linearly spaced over [min, max] of the non-zero weights, which Han et al.
 * found better than random or density-based starts because it keeps the rare large weights
 * represented. In one dimension each cluster is an interval, so assignment is a binary search over
 * the midpoints between sorted centroids; Lloyd iterations stop when no assignment changes.
 */
final class WeightSharing {

  /** The codebook of one tensor and how the clustering went. */
  record Result(float[] centroids, int iterations, long nonZeros) {}

  private WeightSharing() {}

  /** Shares the non-zero weights of {@code w} in place; returns the codebook actually used. */
  static Result share(float[] w, int k, int maxIterations) {
    int nz = 0;
    float min = Float.POSITIVE_INFINITY;
    float max = Float.NEGATIVE_INFINITY;
    for (float v : w) {
      if (v != 0f) {
        nz++;
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
    }
    if (nz == 0) {
      return new Result(new float[0], 0, 0);
    }
    float[] values = new float[nz];
    for (int i = 0, j = 0; i < w.length; i++) {
      if (w[i] != 0f) {
        values[j++] = w[i];
      }
    }
    double[] c = new double[k];
    for (int j = 0; j < k; j++) {
      c[j] = k == 1 ? (min + max) / 2.0 : min + (max - (double) min) * j / (k - 1);
    }
    int[] assign = new int[nz];
    Arrays.fill(assign, -1);
    int it = 0;
    double[] sum = new double[k];
    long[] count = new long[k];
    double[] mid = new double[k - 1];
    while (it < maxIterations) {
      it++;
      for (int j = 0; j < k - 1; j++) {
        mid[j] = (c[j] + c[j + 1]) / 2;
      }
      boolean changed = false;
      Arrays.fill(sum, 0);
      Arrays.fill(count, 0);
      for (int i = 0; i < nz; i++) {
        int a = cluster(mid, values[i]);
        changed |= a != assign[i];
        assign[i] = a;
        sum[a] += values[i];
        count[a]++;
      }
      // An empty cluster keeps its centroid; it lies between its neighbours, so order is kept.
      for (int j = 0; j < k; j++) {
        if (count[j] > 0) {
          c[j] = sum[j] / count[j];
        }
      }
      if (!changed) {
        break;
      }
    }
    float[] centroids = new float[k];
    for (int j = 0; j < k; j++) {
      centroids[j] = (float) c[j];
    }
    // Final assignment against the final centroids.
    for (int j = 0; j < k - 1; j++) {
      mid[j] = (c[j] + c[j + 1]) / 2;
    }
    boolean[] used = new boolean[k];
    for (int i = 0; i < w.length; i++) {
      if (w[i] != 0f) {
        int a = cluster(mid, w[i]);
        used[a] = true;
        w[i] = centroids[a];
      } else {
        w[i] = 0f; // -0.0 becomes +0.0: the archive stores zeros by position only.
      }
    }
    int distinct = 0;
    for (boolean u : used) {
      distinct += u ? 1 : 0;
    }
    float[] codebook = new float[distinct];
    for (int j = 0, d = 0; j < k; j++) {
      if (used[j]) {
        codebook[d++] = centroids[j];
      }
    }
    return new Result(codebook, it, nz);
  }

  /** Index of the interval of {@code v} between sorted midpoints. */
  private static int cluster(double[] mid, float v) {
    int lo = 0;
    int hi = mid.length;
    while (lo < hi) {
      int m = (lo + hi) >>> 1;
      if (v > mid[m]) {
        lo = m + 1;
      } else {
        hi = m;
      }
    }
    return lo;
  }
}
