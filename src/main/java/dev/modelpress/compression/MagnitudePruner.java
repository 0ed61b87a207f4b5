package dev.modelpress.compression;

/**
 * Magnitude pruning kernels over {@code float[]}.
 *
 * <p>The exact k-th smallest magnitude is found with two histogram passes over the float bits
 * rather than by sorting or quickselect: for finite floats, clearing the sign bit leaves an int
 * that orders exactly like |w|, so a 2^16-bucket histogram of the top 16 of those 31 bits finds
 * the bucket holding rank k, and a 2^15-bucket histogram of the low 15 bits inside that bucket
 * finds the exact value. That is linear, allocates no copy of the weights, and, unlike
 * quickselect, works across many tensors streamed one at a time, which global scope needs.
 */
final class MagnitudePruner {

  private static final int ABS = 0x7fffffff;

  private MagnitudePruner() {}

  /** Rejects NaN and infinities, which have no meaningful magnitude rank. */
  static void requireFinite(String tensor, float[] w) {
    long bad = 0;
    for (float v : w) {
      // Exponent all ones: NaN or infinity.
      bad += (Float.floatToRawIntBits(v) & 0x7f800000) == 0x7f800000 ? 1 : 0;
    }
    if (bad > 0) {
      throw new CompressionException(
          "tensor '" + tensor + "' contains " + bad + " NaN or infinite value" + (bad == 1 ? "" : "s")
              + "; it cannot be compressed");
    }
  }

  /** Zeroes every element with |w| <= threshold; returns how many elements it zeroed. */
  static long pruneAtOrBelow(float[] w, double threshold) {
    long zeroed = 0;
    for (int i = 0; i < w.length; i++) {
      boolean prune = Math.abs(w[i]) <= threshold;
      zeroed += prune ? 1 : 0;
      w[i] = prune ? 0f : w[i];
    }
    return zeroed;
  }

  /** Layer scope: zeroes exactly the {@code k} smallest-magnitude elements (ties by index). */
  static void pruneSmallest(float[] w, long k) {
    if (k <= 0) {
      return;
    }
    Rank rank = new Rank();
    rank.countCoarse(w);
    rank.chooseBucket(k);
    rank.countFine(w);
    Cut cut = rank.cut(k);
    cut.apply(w);
  }

  /**
   * Finds the magnitude of rank k over one or many arrays that are offered in two passes: all of
   * them to {@link #countCoarse}, then all of them to {@link #countFine}.
   */
  static final class Rank {
    private final long[] coarse = new long[1 << 16];
    private long[] fine;
    private int bucket;
    private long belowBucket;

    void countCoarse(float[] w) {
      for (float v : w) {
        coarse[(Float.floatToRawIntBits(v) & ABS) >>> 15]++;
      }
    }

    /** After all coarse counts: remembers the bucket that holds rank {@code k} (1-based). */
    void chooseBucket(long k) {
      long seen = 0;
      for (int b = 0; b < coarse.length; b++) {
        if (seen + coarse[b] >= k) {
          bucket = b;
          belowBucket = seen;
          fine = new long[1 << 15];
          return;
        }
        seen += coarse[b];
      }
      throw new IllegalArgumentException("rank " + k + " exceeds the " + seen + " elements counted");
    }

    void countFine(float[] w) {
      for (float v : w) {
        int a = Float.floatToRawIntBits(v) & ABS;
        if ((a >>> 15) == bucket) {
          fine[a & 0x7fff]++;
        }
      }
    }

    /** After all fine counts: the cut that zeroes exactly {@code k} elements. */
    Cut cut(long k) {
      long seen = belowBucket;
      for (int i = 0; i < fine.length; i++) {
        if (seen + fine[i] >= k) {
          return new Cut((bucket << 15) | i, k - seen);
        }
        seen += fine[i];
      }
      throw new IllegalStateException("rank " + k + " not found in bucket " + bucket);
    }
  }

  /**
   * Zeroes every element whose magnitude bits are below {@code bits}, and the first {@code ties}
   * elements (in the order arrays are offered) whose magnitude bits equal it: together exactly k.
   */
  static final class Cut {
    private final int bits;
    private long ties;

    Cut(int bits, long ties) {
      this.bits = bits;
      this.ties = ties;
    }

    /** The magnitude at the cut: every kept |w| >= it, every pruned |w| <= it. */
    float magnitude() {
      return Float.intBitsToFloat(bits);
    }

    void apply(float[] w) {
      int t = bits;
      for (int i = 0; i < w.length; i++) {
        // Written without a branch so the JIT can use a conditional move.
        w[i] = (Float.floatToRawIntBits(w[i]) & ABS) < t ? 0f : w[i];
      }
      for (int i = 0; i < w.length && ties > 0; i++) {
        if ((Float.floatToRawIntBits(w[i]) & ABS) == t) {
          w[i] = 0f;
          ties--;
        }
      }
    }
  }
}
