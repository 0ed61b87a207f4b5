package dev.modelpress.compression.quantize;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The int-domain min/max kernels ({@link MinMaxKernels}: per-channel runs along either axis,
 * per-tensor, groups along a non-last axis, asymmetric whole groups) through {@link
 * LinearQuantizer} against a scalar reading of the definition: range [min(0, w), max(0, w)] per
 * parameter set, scale = max|range| / levels or (hi − lo) / levels in double then float, zero point
 * rint(qmin − lo / scale), codes clamp(rint(w · (1/scale)) + zp). Codes, scales, zero points and
 * packed 4-bit bytes must be bit-identical on every grid, on data whose channels or groups are
 * all-zero, ±0 only, negative-only, exact rounding ties, subnormal, near-overflow or infinite, with
 * lengths that leave tails in every vector loop, on 1–3 threads.
 */
class MinMaxKernelsTest {

  /** The definition, scalar, for any layout. */
  static void reference(float[] w, QuantLayout layout, QuantScheme s, byte[] codes, float[] scales, int[] zps) {
    int params = layout.params();
    float[] lo = new float[params];
    float[] hi = new float[params];
    for (int e = 0; e < w.length; e++) {
      int p = layout.paramOf(e);
      lo[p] = Math.min(lo[p], w[e]);
      hi[p] = Math.max(hi[p], w[e]);
    }
    float[] inv = new float[params];
    for (int p = 0; p < params; p++) {
      double scale = s.symmetric() ? Math.max(-(double) lo[p], hi[p]) / s.levels() : ((double) hi[p] - lo[p]) / s.levels();
      float sc = (float) scale;
      float iv = 1f / sc;
      if (!(sc > 0) || Float.isInfinite(sc) || Float.isInfinite(iv)) {
        scales[p] = 1f;
        inv[p] = 1f;
        zps[p] = s.symmetric() ? s.symmetricZeroPoint() : Math.max(s.qmin(), Math.min(s.qmax(), 0));
      } else {
        scales[p] = sc;
        inv[p] = iv;
        zps[p] = s.symmetric() ? s.symmetricZeroPoint()
            : (int) Math.max(s.qmin(), Math.min(s.qmax(), Math.rint(s.qmin() - lo[p] / scale)));
      }
    }
    for (int e = 0; e < w.length; e++) {
      int p = layout.paramOf(e);
      codes[e] = (byte) (int) Math.max(s.qmin(), Math.min(s.qmax(), Math.rint(w[e] * inv[p]) + zps[p]));
    }
  }

  /**
   * Weights whose parameter sets each follow one edge-case recipe (as {@link
   * SymmetricGroupKernelTest#edgeWeights} does for whole groups), whatever the layout.
   */
  static float[] weights(QuantLayout layout, long seed) {
    java.util.Random r = new java.util.Random(seed);
    int params = layout.params();
    int[] kind = new int[params];
    float[] spread = new float[params];
    int[] size = new int[params];
    for (int p = 0; p < params; p++) {
      kind[p] = r.nextInt(13);
      spread[p] = (float) Math.pow(10, r.nextInt(9) - 6);
    }
    for (int e = 0; e < layout.size(); e++) {
      size[layout.paramOf(e)]++;
    }
    int[] seen = new int[params];
    float[] w = new float[layout.size()];
    for (int e = 0; e < w.length; e++) {
      int p = layout.paramOf(e);
      int i = seen[p]++;
      float gauss = (float) r.nextGaussian() * spread[p];
      w[e] = switch (kind[p]) {
        case 0 -> 0f;                                          // all zero: scale 1
        case 1 -> -Math.abs(gauss);                            // negative only
        case 2 -> Math.abs(gauss);                             // positive only
        case 3 -> i == size[p] / 2 ? -gauss : (i % 3 == 0 ? -0f : 0f); // one spike among ±0
        case 4 -> (r.nextInt(255) - 127) * 0.5f;               // halves: exact ties after scaling
        case 5 -> Float.MIN_VALUE * (r.nextInt(7) - 3);        // subnormal range: scale rounds to 0
        case 6 -> gauss * 1e-38f;                              // tiny normal/subnormal mix
        case 7 -> i == 0 ? Float.MAX_VALUE : gauss * 1e37f;    // near overflow
        case 8 -> i == 1 ? Float.NEGATIVE_INFINITY : gauss;    // infinite range: scale 1, clamped
        case 9 -> -0f;                                         // negative zeros only
        default -> gauss;
      };
    }
    return w;
  }

  static Stream<Arguments> cases() {
    QuantLayout[] layouts = {
        QuantLayout.perTensor(1001),
        QuantLayout.perTensor(4096),
        QuantLayout.perChannel(new long[] {37, 100}, 0),      // runs of 100 (vector tails), packed in registers
        QuantLayout.perChannel(new long[] {29, 33}, 0),       // odd runs: packed after the codes
        QuantLayout.perChannel(new long[] {64, 100}, 1),      // MatMul B [K, N]: one set per element of a row
        QuantLayout.perChannel(new long[] {33, 37}, 1),       // odd rows
        QuantLayout.perChannel(new long[] {3, 4, 5}, 1),      // several runs per set (ConvTranspose)
        QuantLayout.perChannel(new long[] {6, 4, 40}, 2),
        QuantLayout.perGroup(new long[] {41, 96}, 1, 32),     // whole asymmetric groups
        QuantLayout.perGroup(new long[] {300, 256}, 1, 32),   // > one chunk of groups: several threads
        QuantLayout.perGroup(new long[] {9, 128}, 1, 64),
        QuantLayout.perGroup(new long[] {37, 100}, 1, 32),    // short last group: one run per group
        QuantLayout.perGroup(new long[] {96, 40}, 0, 32),     // groups along K of [K, N]: varying runs
        QuantLayout.perGroup(new long[] {100, 37}, 0, 32),    // short last block, odd rows
    };
    QuantScheme[] schemes = {
        QuantScheme.integer(8, true, true), QuantScheme.integer(8, true, false), QuantScheme.integer(8, false, true),
        QuantScheme.integer(8, false, false), QuantScheme.integer(4, true, true), QuantScheme.integer(4, true, false),
        QuantScheme.integer(4, false, true), QuantScheme.integer(4, false, false), QuantScheme.integer(2, true, false),
    };
    Stream.Builder<Arguments> out = Stream.builder();
    for (QuantLayout l : layouts) {
      for (QuantScheme s : schemes) {
        out.add(Arguments.of(l, s));
      }
    }
    return out.build();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void minMaxKernelsAreBitIdenticalToTheScalarDefinition(QuantLayout layout, QuantScheme s) {
    float[] w = weights(layout, 31L * layout.size() + layout.params() + layout.axis() + 7L * s.bits());
    int n = w.length;
    int params = layout.params();
    byte[] refCodes = new byte[n];
    float[] refScales = new float[params];
    int[] refZps = new int[params];
    reference(w, layout, s, refCodes, refScales, refZps);
    for (int threads : new int[] {1, 2, 3}) {
      byte[] codes = new byte[n];
      float[] scales = new float[params];
      int[] zps = new int[params];
      byte[] packed = s.bits() == 4 ? new byte[(n + 1) / 2] : null;
      double clip = LinearQuantizer.quantize(MemorySegment.ofArray(w), layout, s, false, codes, scales, zps, packed,
          threads);
      assertThat(clip).isEqualTo(1.0);
      assertThat(scales).as("scales, %d threads", threads).isEqualTo(refScales);
      assertThat(zps).as("zero points, %d threads", threads).isEqualTo(refZps);
      assertThat(codes).as("codes, %d threads", threads).isEqualTo(refCodes);
      if (packed != null) {
        assertThat(packed).as("packed, %d threads", threads).isEqualTo(WeightEncoder.pack(refCodes, 4));
      }
    }
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void mseRangesCodeWithTheChosenScalesOnAnyThreadCount(QuantLayout layout, QuantScheme s) {
    // MSE picks its own scales; the codes must still be the definition's for the scales it returns,
    // and nothing may depend on the thread count.
    float[] w = weights(layout, 31L * layout.size() + layout.params() + layout.axis());
    int params = layout.params();
    LinearQuantizer.Result one = LinearQuantizer.quantize(w, layout, s, true);
    for (int threads : new int[] {2, 3}) {
      byte[] codes = new byte[w.length];
      float[] scales = new float[params];
      int[] zps = new int[params];
      double clip = LinearQuantizer.quantize(MemorySegment.ofArray(w), layout, s, true, codes, scales, zps, null,
          threads);
      assertThat(clip).isEqualTo(one.clipRatio());
      assertThat(scales).isEqualTo(one.scales());
      assertThat(zps).isEqualTo(one.zeroPoints());
      assertThat(codes).isEqualTo(one.codes());
    }
    for (int e = 0; e < w.length; e++) {
      int p = layout.paramOf(e);
      float inv = 1f / one.scales()[p];
      int expected = (int) Math.max(s.qmin(), Math.min(s.qmax(), Math.rint(w[e] * inv) + one.zeroPoints()[p]));
      assertThat(LinearQuantizer.code(one.codes()[e], s)).as("element %d", e).isEqualTo(expected);
    }
  }
}
