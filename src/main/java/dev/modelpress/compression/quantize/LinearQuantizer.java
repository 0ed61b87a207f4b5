package dev.modelpress.compression.quantize;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Quantizes one tensor: chooses a scale and zero point per parameter set of its {@link
 * QuantLayout}, then rounds every weight to the nearest code of its {@link QuantScheme}.
 *
 * <p><b>Integer grids.</b> The range always includes 0 (so 0, and pruned zeros, stay exact).
 * {@code MINMAX} uses the raw range: symmetric scale = max|w| / (2^(b-1) - 1); asymmetric scale =
 * (max - min) / (2^b - 1) with zero point rint(qmin - min / scale). {@code MSE} shrinks the range by
 * each of {@value #CANDIDATES} factors evenly spaced over [0.5, 1] and keeps, per parameter set, the
 * one with the least squared error; the factor 1 is a candidate, so MSE is never worse than
 * min/max on the weights.
 *
 * <p><b>Binary</b> (XNOR-Net): w ≈ sign(w)·α with α = mean|w| per set, which is the least-squares
 * scale for sign codes, so the range method does not change it. <b>Ternary</b> (TWN): codes
 * sign(w) where |w| > Δ, else 0, and α = mean |w| over the kept weights; {@code MINMAX} uses the
 * TWN rule Δ = 0.7·mean|w|; {@code MSE} searches Δ over {@value #CANDIDATES} fractions of max|w|
 * for the one with least error (for a fixed Δ the best α is the mean, so the error is Σw² −
 * (Σ_kept |w|)² / kept and needs no second pass).
 */
public final class LinearQuantizer {

  /** Range-shrink candidates of the MSE search. */
  public static final int CANDIDATES = 100;

  private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private LinearQuantizer() {}

  /**
   * Codes (one per element, in the tensor's order), and per parameter set a scale and an integer
   * zero point. {@code clipRatio} is the mean range factor chosen (1 for min/max), or for
   * ternary the mean Δ / max|w|; {@code NaN} for binary. {@code fractionalZeroPoints}, when not
   * null, are the zero points actually decoded with (real-valued, from {@link RangeRefiner});
   * {@code zeroPoints} then holds the nearest in-range integers (for padding codes).
   */
  public record Result(byte[] codes, float[] scales, int[] zeroPoints, double clipRatio, float[] fractionalZeroPoints) {

    /** Integer zero points only. */
    public Result(byte[] codes, float[] scales, int[] zeroPoints, double clipRatio) {
      this(codes, scales, zeroPoints, clipRatio, null);
    }

    /** The zero point set {@code p} is decoded with. */
    public float zeroPoint(int p) {
      return fractionalZeroPoints == null ? zeroPoints[p] : fractionalZeroPoints[p];
    }
  }

  /** Quantizes {@code w} laid out as {@code layout}. */
  public static Result quantize(float[] w, QuantLayout layout, QuantScheme scheme, boolean mse) {
    if (w.length != layout.size()) {
      throw new IllegalArgumentException("tensor has " + w.length + " elements, layout " + layout + " " + layout.size());
    }
    byte[] codes = new byte[w.length];
    float[] scales = new float[layout.params()];
    int[] zeroPoints = new int[layout.params()];
    double clip = quantize(MemorySegment.ofArray(w), layout, scheme, mse, codes, scales, zeroPoints);
    return new Result(codes, scales, zeroPoints, clip);
  }

  /**
   * Quantizes the floats in {@code w} into caller-owned arrays ({@code codes} one per element,
   * {@code scales}/{@code zeroPoints} one per parameter set) and returns the mean clip ratio.
   */
  public static double quantize(MemorySegment w, QuantLayout layout, QuantScheme scheme, boolean mse, byte[] codes,
      float[] scales, int[] zeroPoints) {
    return quantize(w, layout, scheme, mse, codes, scales, zeroPoints, null);
  }

  /**
   * As {@link #quantize(MemorySegment, QuantLayout, QuantScheme, boolean, byte[], float[], int[])},
   * and for 4-bit grids also packs the codes two per byte into {@code packed4} (when not null) a
   * chunk at a time while they are still in cache.
   */
  public static double quantize(MemorySegment w, QuantLayout layout, QuantScheme scheme, boolean mse, byte[] codes,
      float[] scales, int[] zeroPoints, byte[] packed4) {
    int threads = layout.size() >= PARALLEL_MIN_ELEMENTS ? Runtime.getRuntime().availableProcessors() : 1;
    return quantize(w, layout, scheme, mse, codes, scales, zeroPoints, packed4, threads);
  }

  /**
   * Tensors at least this large (4 MiB of fp32) are quantized on every core when the layout allows
   * it: below that, handing half of the work to another thread costs more than it saves.
   */
  public static final int PARALLEL_MIN_ELEMENTS = 1 << 20;

  /**
   * As {@link #quantize(MemorySegment, QuantLayout, QuantScheme, boolean, byte[], float[], int[],
   * byte[])} on up to {@code threads} threads (the caller's and the common fork-join pool's). Only
   * min/max group layouts (whole groups of a vector multiple) are split, into independent ranges of
   * groups handed out a chunk at a time; every other case runs on the caller's thread. Results do not
   * depend on {@code threads}.
   */
  public static double quantize(MemorySegment w, QuantLayout layout, QuantScheme scheme, boolean mse, byte[] codes,
      float[] scales, int[] zeroPoints, byte[] packed4, int threads) {
    double clip = switch (scheme.kind()) {
      case INTEGER -> layout.fused()
          ? integerFused(w, layout, scheme, mse, codes, scales, zeroPoints, packed4, threads)
          : integerTwoPass(w, layout, scheme, mse, codes, scales, zeroPoints);
      case BINARY, TERNARY -> signLike(w, layout, scheme, mse, codes, scales, zeroPoints);
    };
    if (packed4 != null && !(scheme.kind() == QuantScheme.Kind.INTEGER && layout.fused())) {
      QuantKernels.pack4(codes, 0, codes.length, packed4, 0);
    }
    return clip;
  }

  /** Elements between in-cache packing of fused runs (16 KiB of codes). */
  private static final int PACK_CHUNK = 1 << 14;

  // ---- integer grids ---------------------------------------------------------------------

  /** Scale and zero point for the range [lo, hi] (lo ≤ 0 ≤ hi) shrunk by {@code f}; into out[p]. */
  private static void choose(QuantScheme s, float lo, float hi, double f, float[] scales, float[] inv, int[] zps,
      int p) {
    double scale = s.symmetric() ? Math.max(-(double) lo, hi) * f / s.levels() : ((double) hi - lo) * f / s.levels();
    float sc = (float) scale;
    float iv = 1f / sc;
    if (!(sc > 0) || Float.isInfinite(sc) || Float.isInfinite(iv)) {
      // An all-zero set (or a range below float resolution): any positive scale decodes 0 to 0.
      scales[p] = 1f;
      inv[p] = 1f;
      zps[p] = s.symmetric() ? s.symmetricZeroPoint() : Math.max(s.qmin(), Math.min(s.qmax(), 0));
      return;
    }
    scales[p] = sc;
    inv[p] = iv;
    zps[p] = s.symmetric() ? s.symmetricZeroPoint()
        : (int) Math.max(s.qmin(), Math.min(s.qmax(), Math.rint(s.qmin() - lo * f / scale)));
  }

  static double factor(int k) {
    return 0.5 + 0.5 * k / (CANDIDATES - 1);
  }

  /** fp32 bytes of the groups one symmetric kernel call takes: its three passes then run in L1. */
  private static final int GROUP_CHUNK_BYTES = 32 << 10;

  private static double integerFused(MemorySegment w, QuantLayout layout, QuantScheme s, boolean mse, byte[] codes,
      float[] scales, int[] zps, byte[] packed4, int threads) {
    int g = layout.groupSize();
    if (!mse && layout.mode() == QuantLayout.Mode.GROUP && layout.extent() % g == 0 && g % QuantKernels.F.length() == 0) {
      // Whole groups of a vector multiple: the dedicated loop, a chunk of groups per call.
      int groups = layout.params();
      int perChunk = Math.max(1, (s.symmetric() ? GROUP_CHUNK_BYTES / 4 : PACK_CHUNK) / g);
      int chunks = (groups + perChunk - 1) / perChunk;
      int helpers = Math.max(0, Math.min(threads, chunks) - 1);
      // Chunks are handed out one at a time from a shared counter, so a helper that starts late (a
      // busy core, a busy pool) only takes what is left: the caller never waits for more than the
      // chunks a helper has already begun, and does everything itself if none starts in time.
      AtomicInteger next = new AtomicInteger();
      AtomicBoolean[] started = new AtomicBoolean[helpers];
      CompletableFuture<?>[] done = new CompletableFuture<?>[helpers];
      for (int t = 0; t < helpers; t++) {
        AtomicBoolean mine = started[t] = new AtomicBoolean();
        // The common pool explicitly: with fewer than 3 cores runAsync's default would start a new
        // thread per task; on 2 cores the pool's one worker plus the caller are the two threads.
        done[t] = CompletableFuture.runAsync(() -> {
          if (mine.compareAndSet(false, true)) {
            groupChunks(w, s, g, groups, perChunk, chunks, next, codes, scales, zps, packed4);
          }
        }, ForkJoinPool.commonPool());
      }
      groupChunks(w, s, g, groups, perChunk, chunks, next, codes, scales, zps, packed4);
      for (int t = 0; t < helpers; t++) {
        if (!started[t].compareAndSet(false, true)) {
          done[t].join();
        }
      }
      return 1;
    }
    int packedUpTo = 0;
    float qmin = s.qmin();
    float qmax = s.qmax();
    float[] lo = new float[1];
    float[] hi = new float[1];
    float[] candScale = new float[1];
    float[] candInv = new float[1];
    int[] candZp = new int[1];
    double clipSum = 0;
    int runs = layout.runs();
    for (int r = 0; r < runs; r++) {
      int start = layout.runStart(r);
      int len = layout.runLength(r);
      int p = layout.runParam(r);
      lo[0] = 0;
      hi[0] = 0;
      QuantKernels.rangeShared(w, start, len, lo, hi, 0);
      choose(s, lo[0], hi[0], 1, candScale, candInv, candZp, 0);
      float scale = candScale[0];
      float iv = candInv[0];
      int zp = candZp[0];
      double best = 1;
      if (mse) {
        float bestErr = QuantKernels.errorShared(w, start, len, scale, iv, zp, qmin, qmax);
        for (int k = 0; k < CANDIDATES - 1; k++) {
          double f = factor(k);
          choose(s, lo[0], hi[0], f, candScale, candInv, candZp, 0);
          float err = QuantKernels.errorShared(w, start, len, candScale[0], candInv[0], candZp[0], qmin, qmax);
          if (err < bestErr) {
            bestErr = err;
            best = f;
            scale = candScale[0];
            iv = candInv[0];
            zp = candZp[0];
          }
        }
      }
      scales[p] = scale;
      zps[p] = zp;
      clipSum += best;
      QuantKernels.quantizeShared(w, start, len, iv, zp, qmin, qmax, codes, start);
      int end = start + len;
      if (packed4 != null && (end - packedUpTo >= PACK_CHUNK || r == runs - 1)) {
        int upTo = r == runs - 1 ? end : end & ~1;
        QuantKernels.pack4(codes, packedUpTo, upTo - packedUpTo, packed4, packedUpTo / 2);
        packedUpTo = upTo;
      }
    }
    return clipSum / runs;
  }

  /**
   * Chunks of {@code perChunk} groups each, taken from {@code next} until all {@code chunks} are
   * claimed; packed 4-bit codes included (every chunk starts on an even element).
   */
  private static void groupChunks(MemorySegment w, QuantScheme s, int g, int groups, int perChunk, int chunks,
      AtomicInteger next, byte[] codes, float[] scales, int[] zps, byte[] packed4) {
    int lanes = QuantKernels.F.length();
    int[] amax = s.symmetric() ? new int[(perChunk + lanes - 1) / lanes * lanes] : null;
    float[] inv = s.symmetric() ? new float[amax.length] : null;
    float levels = (float) s.levels();
    for (int c = next.getAndIncrement(); c < chunks; c = next.getAndIncrement()) {
      int j = c * perChunk;
      int count = Math.min(perChunk, groups - j);
      if (s.symmetric()) {
        QuantKernels.quantizeGroupsSymmetric(w, (long) j * g, count, g, levels, s.qmin(), s.qmax(),
            s.symmetricZeroPoint(), codes, j * g, scales, zps, j, amax, inv, packed4);
      } else {
        QuantKernels.quantizeGroups(w, (long) j * g, count, g, false, s.levels(), s.qmin(), s.qmax(),
            s.symmetricZeroPoint(), codes, j * g, scales, zps, j);
        if (packed4 != null) {
          QuantKernels.pack4(codes, j * g, count * g, packed4, j * g / 2);
        }
      }
    }
  }

  private static double integerTwoPass(MemorySegment w, QuantLayout layout, QuantScheme s, boolean mse, byte[] codes,
      float[] scales, int[] zps) {
    int params = layout.params();
    float[] lo = new float[params];
    float[] hi = new float[params];
    int runs = layout.runs();
    boolean shared = layout.sharedRuns();
    for (int r = 0; r < runs; r++) {
      if (shared) {
        QuantKernels.rangeShared(w, layout.runStart(r), layout.runLength(r), lo, hi, layout.runParam(r));
      } else {
        QuantKernels.rangeVarying(w, layout.runStart(r), layout.runLength(r), lo, hi, layout.runParam(r));
      }
    }
    float[] inv = new float[params];
    float[] zpf = new float[params];
    for (int p = 0; p < params; p++) {
      choose(s, lo[p], hi[p], 1, scales, inv, zps, p);
    }
    float qmin = s.qmin();
    float qmax = s.qmax();
    double[] chosen = new double[params];
    java.util.Arrays.fill(chosen, 1);
    if (mse) {
      float[] bestErr = errors(w, layout, s, scales, inv, zps);
      float[] cs = new float[params];
      float[] ci = new float[params];
      int[] cz = new int[params];
      for (int k = 0; k < CANDIDATES - 1; k++) {
        double f = factor(k);
        for (int p = 0; p < params; p++) {
          choose(s, lo[p], hi[p], f, cs, ci, cz, p);
        }
        float[] err = errors(w, layout, s, cs, ci, cz);
        for (int p = 0; p < params; p++) {
          if (err[p] < bestErr[p]) {
            bestErr[p] = err[p];
            chosen[p] = f;
            scales[p] = cs[p];
            inv[p] = ci[p];
            zps[p] = cz[p];
          }
        }
      }
    }
    for (int p = 0; p < params; p++) {
      zpf[p] = zps[p];
    }
    for (int r = 0; r < runs; r++) {
      int start = layout.runStart(r);
      int p = layout.runParam(r);
      if (shared) {
        QuantKernels.quantizeShared(w, start, layout.runLength(r), inv[p], zpf[p], qmin, qmax, codes, start);
      } else {
        QuantKernels.quantizeVarying(w, start, layout.runLength(r), inv, zpf, p, qmin, qmax, codes, start);
      }
    }
    double sum = 0;
    for (double c : chosen) {
      sum += c;
    }
    return params == 0 ? 1 : sum / params;
  }

  /** Squared error per parameter set for the given candidate parameters. */
  private static float[] errors(MemorySegment w, QuantLayout layout, QuantScheme s, float[] scales, float[] inv,
      int[] zps) {
    int params = layout.params();
    float[] err = new float[params];
    float[] zpf = new float[params];
    for (int p = 0; p < params; p++) {
      zpf[p] = zps[p];
    }
    boolean shared = layout.sharedRuns();
    for (int r = 0, runs = layout.runs(); r < runs; r++) {
      int p = layout.runParam(r);
      if (shared) {
        err[p] += QuantKernels.errorShared(w, layout.runStart(r), layout.runLength(r), scales[p], inv[p], zpf[p],
            s.qmin(), s.qmax());
      } else {
        QuantKernels.errorVarying(w, layout.runStart(r), layout.runLength(r), scales, inv, zpf, p, s.qmin(), s.qmax(),
            err);
      }
    }
    return err;
  }

  // ---- binary and ternary ----------------------------------------------------------------

  private static double signLike(MemorySegment w, QuantLayout layout, QuantScheme s, boolean mse, byte[] codes,
      float[] scales, int[] zps) {
    int n = layout.size();
    int params = layout.params();
    double[] sumAbs = new double[params];
    long[] count = new long[params];
    float[] maxAbs = new float[params];
    for (int e = 0; e < n; e++) {
      int p = layout.paramOf(e);
      float a = Math.abs(w.getAtIndex(FLOAT, e));
      sumAbs[p] += a;
      count[p]++;
      maxAbs[p] = Math.max(maxAbs[p], a);
    }
    java.util.Arrays.fill(zps, 0);
    if (s.kind() == QuantScheme.Kind.BINARY) {
      for (int p = 0; p < params; p++) {
        float a = count[p] == 0 ? 0f : (float) (sumAbs[p] / count[p]);
        scales[p] = a > 0 ? a : 1f;
      }
      for (int e = 0; e < n; e++) {
        // sign(0) = +1: binary has no zero code.
        codes[e] = (byte) (w.getAtIndex(FLOAT, e) >= 0 ? 1 : -1);
      }
      return Double.NaN;
    }
    float[] threshold = new float[params];
    for (int p = 0; p < params; p++) {
      threshold[p] = count[p] == 0 ? 0f : (float) (0.7 * sumAbs[p] / count[p]);
    }
    if (mse) {
      double[] bestGain = keptGain(w, layout, threshold);
      float[] candidate = new float[params];
      for (int k = 1; k < CANDIDATES; k++) {
        for (int p = 0; p < params; p++) {
          candidate[p] = maxAbs[p] * k / CANDIDATES;
        }
        double[] gain = keptGain(w, layout, candidate);
        for (int p = 0; p < params; p++) {
          if (gain[p] > bestGain[p]) {
            bestGain[p] = gain[p];
            threshold[p] = candidate[p];
          }
        }
      }
    }
    double[] kept = new double[params];
    long[] keptCount = new long[params];
    for (int e = 0; e < n; e++) {
      int p = layout.paramOf(e);
      float v = w.getAtIndex(FLOAT, e);
      boolean keep = Math.abs(v) > threshold[p];
      codes[e] = (byte) (keep ? (v > 0 ? 1 : -1) : 0);
      if (keep) {
        kept[p] += Math.abs(v);
        keptCount[p]++;
      }
    }
    double clip = 0;
    for (int p = 0; p < params; p++) {
      float a = keptCount[p] == 0 ? 0f : (float) (kept[p] / keptCount[p]);
      scales[p] = a > 0 ? a : 1f;
      clip += maxAbs[p] > 0 ? threshold[p] / maxAbs[p] : 0;
    }
    return params == 0 ? 0 : clip / params;
  }

  /** (Σ_kept |w|)² / kept per set: the error reduction of ternary codes at these thresholds. */
  private static double[] keptGain(MemorySegment w, QuantLayout layout, float[] threshold) {
    int params = layout.params();
    double[] sum = new double[params];
    long[] count = new long[params];
    for (int e = 0, n = layout.size(); e < n; e++) {
      int p = layout.paramOf(e);
      float a = Math.abs(w.getAtIndex(FLOAT, e));
      if (a > threshold[p]) {
        sum[p] += a;
        count[p]++;
      }
    }
    double[] gain = new double[params];
    for (int p = 0; p < params; p++) {
      gain[p] = count[p] == 0 ? 0 : sum[p] * sum[p] / count[p];
    }
    return gain;
  }

  /** The integer a stored code byte stands for: unsigned grids store codes up to 255. */
  public static int code(byte b, QuantScheme scheme) {
    return scheme.qmin() >= 0 ? b & 0xFF : b;
  }

  /** (q - zp) · scale for every element, in float: what DequantizeLinear computes. */
  public static float[] dequantize(Result q, QuantLayout layout, QuantScheme scheme) {
    float[] out = new float[q.codes().length];
    for (int e = 0; e < out.length; e++) {
      int p = layout.paramOf(e);
      out[e] = (code(q.codes()[e], scheme) - q.zeroPoint(p)) * q.scales()[p];
    }
    return out;
  }
}
