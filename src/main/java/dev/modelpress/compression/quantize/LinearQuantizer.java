package dev.modelpress.compression.quantize;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

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
   * byte[])} on up to {@code threads} threads (the caller's and the common fork-join pool's). Integer
   * grids split their work into independent chunks (of whole groups, of runs, of rows) handed out
   * one at a time; binary and ternary grids run on the caller's thread. Results do not depend on
   * {@code threads}.
   */
  public static double quantize(MemorySegment w, QuantLayout layout, QuantScheme scheme, boolean mse, byte[] codes,
      float[] scales, int[] zeroPoints, byte[] packed4, int threads) {
    return switch (scheme.kind()) {
      case INTEGER -> layout.fused()
          ? integerFused(w, layout, scheme, mse, codes, scales, zeroPoints, packed4, threads)
          : integerTwoPass(w, layout, scheme, mse, codes, scales, zeroPoints, packed4, threads);
      case BINARY, TERNARY -> {
        double clip = signLike(w, layout, scheme, mse, codes, scales, zeroPoints);
        if (packed4 != null) {
          QuantKernels.pack4(codes, 0, codes.length, packed4, 0);
        }
        yield clip;
      }
    };
  }

  /** Elements per chunk of runs handed to one thread (64 KiB of fp32). */
  private static final int RUN_CHUNK = 1 << 14;

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

  /** min(0, w) from {@link MinMaxKernels} range bits; symmetric grids only need -max|w|. */
  private static float lo(QuantScheme s, int hiBits, int loBits) {
    return s.symmetric() ? -Float.intBitsToFloat(hiBits) : MinMaxKernels.loOf(loBits);
  }

  /** fp32 bytes of the groups one group kernel call takes: its three passes then run in L1. */
  private static final int GROUP_CHUNK_BYTES = 32 << 10;

  /**
   * Whether every run starts on an even element, so 4-bit codes can be packed run by run (a run of
   * odd length then only ever comes last).
   */
  private static boolean evenRunStarts(QuantLayout l) {
    return switch (l.mode()) {
      case TENSOR -> true;
      case CHANNEL -> l.inner() == 1 ? l.extent() % 2 == 0 : l.inner() % 2 == 0;
      case GROUP -> l.inner() == 1 ? l.extent() % 2 == 0 && l.groupSize() % 2 == 0 : l.inner() % 2 == 0;
    };
  }

  private static double integerFused(MemorySegment w, QuantLayout layout, QuantScheme s, boolean mse, byte[] codes,
      float[] scales, int[] zps, byte[] packed4, int threads) {
    int g = layout.groupSize();
    if (!mse && layout.mode() == QuantLayout.Mode.GROUP && layout.extent() % g == 0 && g % QuantKernels.F.length() == 0) {
      // Whole groups of a vector multiple: the dedicated loops, a chunk of groups per call.
      int groups = layout.params();
      int perChunk = Math.max(1, GROUP_CHUNK_BYTES / 4 / g);
      int chunks = (groups + perChunk - 1) / perChunk;
      shareChunks(chunks, threads,
          next -> groupChunks(w, s, g, groups, perChunk, chunks, next, codes, scales, zps, packed4));
      return 1;
    }
    // One parameter set per run: each run is ranged and coded while it is in cache.
    int runs = layout.runs();
    boolean packInline = packed4 != null && evenRunStarts(layout);
    double[] chosen = mse ? new double[runs] : null;
    int perChunk = Math.max(1, RUN_CHUNK / Math.max(1, layout.runLength(0)));
    int chunks = (runs + perChunk - 1) / perChunk;
    shareChunks(chunks, threads, next -> {
      float qmin = s.qmin();
      float qmax = s.qmax();
      int[] range = new int[2];
      float[] candScale = new float[1];
      float[] candInv = new float[1];
      int[] candZp = new int[1];
      for (int c = next.getAndIncrement(); c < chunks; c = next.getAndIncrement()) {
        for (int r = c * perChunk, end = Math.min(runs, r + perChunk); r < end; r++) {
          int start = layout.runStart(r);
          int len = layout.runLength(r);
          int p = layout.runParam(r);
          MinMaxKernels.rangeRun(w, start, len, s.symmetric(), range);
          float lo = lo(s, range[0], range[1]);
          float hi = MinMaxKernels.hiOf(range[0]);
          choose(s, lo, hi, 1, candScale, candInv, candZp, 0);
          float scale = candScale[0];
          float iv = candInv[0];
          int zp = candZp[0];
          if (mse) {
            double best = 1;
            float bestErr = QuantKernels.errorShared(w, start, len, scale, iv, zp, qmin, qmax);
            for (int k = 0; k < CANDIDATES - 1; k++) {
              double f = factor(k);
              choose(s, lo, hi, f, candScale, candInv, candZp, 0);
              float err = QuantKernels.errorShared(w, start, len, candScale[0], candInv[0], candZp[0], qmin, qmax);
              if (err < bestErr) {
                bestErr = err;
                best = f;
                scale = candScale[0];
                iv = candInv[0];
                zp = candZp[0];
              }
            }
            chosen[r] = best;
          }
          scales[p] = scale;
          zps[p] = zp;
          MinMaxKernels.codesRun(w, start, len, iv, zp, s.qmin(), s.qmax(), codes, start, packInline ? packed4 : null);
        }
      }
    });
    if (packed4 != null && !packInline) {
      QuantKernels.pack4(codes, 0, codes.length, packed4, 0);
    }
    if (!mse) {
      return 1;
    }
    // Summed in run order, so the mean does not depend on the threads.
    double clipSum = 0;
    for (double c : chosen) {
      clipSum += c;
    }
    return clipSum / runs;
  }

  /**
   * Calls {@code worker} on the caller's thread and on up to {@code threads - 1} common-pool
   * threads; each takes chunk indices from the shared counter it is given until all {@code chunks}
   * are claimed. A helper that starts late (a busy core, a busy pool) only takes what is left: the
   * caller never waits for more than the chunks a helper has already begun, and does everything
   * itself if none starts in time.
   */
  private static void shareChunks(int chunks, int threads, Consumer<AtomicInteger> worker) {
    AtomicInteger next = new AtomicInteger();
    int helpers = Math.max(0, Math.min(threads, chunks) - 1);
    AtomicBoolean[] started = new AtomicBoolean[helpers];
    CompletableFuture<?>[] done = new CompletableFuture<?>[helpers];
    for (int t = 0; t < helpers; t++) {
      AtomicBoolean mine = started[t] = new AtomicBoolean();
      // The common pool explicitly: with fewer than 3 cores runAsync's default would start a new
      // thread per task; on 2 cores the pool's one worker plus the caller are the two threads.
      done[t] = CompletableFuture.runAsync(() -> {
        if (mine.compareAndSet(false, true)) {
          worker.accept(next);
        }
      }, ForkJoinPool.commonPool());
    }
    worker.accept(next);
    for (int t = 0; t < helpers; t++) {
      if (!started[t].compareAndSet(false, true)) {
        done[t].join();
      }
    }
  }

  /**
   * Chunks of {@code perChunk} groups each, taken from {@code next} until all {@code chunks} are
   * claimed; packed 4-bit codes included (every chunk starts on an even element).
   */
  private static void groupChunks(MemorySegment w, QuantScheme s, int g, int groups, int perChunk, int chunks,
      AtomicInteger next, byte[] codes, float[] scales, int[] zps, byte[] packed4) {
    int lanes = QuantKernels.F.length();
    int scratch = (perChunk + lanes - 1) / lanes * lanes;
    int[] hi = new int[scratch];
    int[] lo = s.symmetric() ? null : new int[scratch];
    float[] inv = new float[scratch];
    int[] bias = s.symmetric() ? null : new int[scratch];
    float levels = (float) s.levels();
    for (int c = next.getAndIncrement(); c < chunks; c = next.getAndIncrement()) {
      int j = c * perChunk;
      int count = Math.min(perChunk, groups - j);
      if (s.symmetric()) {
        QuantKernels.quantizeGroupsSymmetric(w, (long) j * g, count, g, levels, s.qmin(), s.qmax(),
            s.symmetricZeroPoint(), codes, j * g, scales, zps, j, hi, inv, packed4);
      } else {
        MinMaxKernels.groupsAsymmetric(w, (long) j * g, count, g, s.levels(), s.qmin(), s.qmax(), codes, j * g,
            scales, zps, j, hi, lo, inv, bias, packed4);
      }
    }
  }

  /**
   * Layouts whose parameter sets span several runs (per channel along a non-leading axis, groups
   * along a non-last axis): every set's range first, then the parameters, then the codes. Both
   * passes are split into chunks of runs; the range pass merges per-thread int maxima, which do not
   * depend on the order.
   */
  private static double integerTwoPass(MemorySegment w, QuantLayout layout, QuantScheme s, boolean mse, byte[] codes,
      float[] scales, int[] zps, byte[] packed4, int threads) {
    int params = layout.params();
    int runs = layout.runs();
    boolean shared = layout.sharedRuns();
    boolean sym = s.symmetric();
    int[] hiBits = new int[params];
    int[] loBits = sym ? null : new int[params];
    if (!sym) {
      java.util.Arrays.fill(loBits, MinMaxKernels.loStart());
    }
    int perChunk = Math.max(1, RUN_CHUNK / Math.max(1, layout.runLength(0)));
    int chunks = (runs + perChunk - 1) / perChunk;
    Object lock = new Object();
    shareChunks(chunks, threads, next -> {
      int c = next.getAndIncrement();
      if (c >= chunks) {
        return;
      }
      int[] hi = new int[params];
      int[] lo = sym ? null : new int[params];
      if (!sym) {
        java.util.Arrays.fill(lo, MinMaxKernels.loStart());
      }
      int[] range = new int[2];
      for (; c < chunks; c = next.getAndIncrement()) {
        for (int r = c * perChunk, end = Math.min(runs, r + perChunk); r < end; r++) {
          int start = layout.runStart(r);
          int len = layout.runLength(r);
          int p = layout.runParam(r);
          if (shared) {
            MinMaxKernels.rangeRun(w, start, len, sym, range);
            hi[p] = Math.max(hi[p], range[0]);
            if (!sym) {
              lo[p] = Math.max(lo[p], range[1]);
            }
          } else {
            MinMaxKernels.rangeVarying(w, start, len, sym, hi, lo, p);
          }
        }
      }
      synchronized (lock) {
        for (int p = 0; p < params; p++) {
          hiBits[p] = Math.max(hiBits[p], hi[p]);
          if (!sym) {
            loBits[p] = Math.max(loBits[p], lo[p]);
          }
        }
      }
    });
    float[] lo = new float[params];
    float[] hi = new float[params];
    float[] inv = new float[params];
    for (int p = 0; p < params; p++) {
      lo[p] = lo(s, hiBits[p], sym ? 0 : loBits[p]);
      hi[p] = MinMaxKernels.hiOf(hiBits[p]);
      choose(s, lo[p], hi[p], 1, scales, inv, zps, p);
    }
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
    int[] bias = new int[params];
    for (int p = 0; p < params; p++) {
      bias[p] = MinMaxKernels.bias(zps[p]);
    }
    boolean packInline = packed4 != null && evenRunStarts(layout);
    shareChunks(chunks, threads, next -> {
      for (int c = next.getAndIncrement(); c < chunks; c = next.getAndIncrement()) {
        for (int r = c * perChunk, end = Math.min(runs, r + perChunk); r < end; r++) {
          int start = layout.runStart(r);
          int len = layout.runLength(r);
          int p = layout.runParam(r);
          if (shared) {
            MinMaxKernels.codesRun(w, start, len, inv[p], zps[p], s.qmin(), s.qmax(), codes, start,
                packInline ? packed4 : null);
          } else {
            MinMaxKernels.codesVarying(w, start, len, inv, bias, p, s.qmin(), s.qmax(), codes, start,
                packInline ? packed4 : null);
          }
        }
      }
    });
    if (packed4 != null && !packInline) {
      QuantKernels.pack4(codes, 0, codes.length, packed4, 0);
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
