package dev.modelpress.compression.quantize;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The symmetric per-group kernel (int-domain ranges, vector scales) against a scalar reading of
 * min/max round-to-nearest and against the general group kernel it replaces: codes, scales and
 * zero points must be bit-identical, on data built to hit the edges (all-zero, negative-only and
 * single-spike groups, exact rounding ties, subnormal, huge and infinite ranges) and on group
 * counts that leave tails in every loop (vector blocks of groups, chunks, threads).
 */
class SymmetricGroupKernelTest {

  /** Weights in groups of {@code g}, each group drawn from one of several edge-case recipes. */
  static float[] edgeWeights(int groups, int g, long seed) {
    Random r = new Random(seed);
    float[] w = new float[groups * g];
    for (int p = 0; p < groups; p++) {
      int kind = r.nextInt(12);
      float spread = (float) Math.pow(10, r.nextInt(9) - 6);
      for (int i = 0; i < g; i++) {
        float gauss = (float) r.nextGaussian() * spread;
        w[p * g + i] = switch (kind) {
          case 0 -> 0f;                                   // all zero: scale 1
          case 1 -> -Math.abs(gauss);                     // negative only
          case 2 -> Math.abs(gauss);                      // positive only
          case 3 -> i == g / 2 ? -gauss : (i % 3 == 0 ? -0f : 0f); // one spike among ±0
          case 4 -> (r.nextInt(255) - 127) * 0.5f;        // halves: exact ties after scaling
          case 5 -> Float.MIN_VALUE * (r.nextInt(7) - 3); // subnormal range: scale rounds to 0
          case 6 -> gauss * 1e-38f;                       // tiny normal/subnormal mix
          case 7 -> i == 0 ? Float.MAX_VALUE : gauss * 1e37f; // near overflow
          case 8 -> i == 1 ? Float.NEGATIVE_INFINITY : gauss; // infinite range: scale 1, clamped
          default -> gauss;
        };
      }
    }
    return w;
  }

  /** The definition, in scalar Java: scale = max|w| / levels (double, then float), codes clamp(rint(w / scale)). */
  static void reference(float[] w, int g, QuantScheme s, byte[] codes, float[] scales, int[] zps) {
    for (int p = 0; p < w.length / g; p++) {
      float amax = 0;
      for (int i = 0; i < g; i++) {
        amax = Math.max(amax, Math.abs(w[p * g + i]));
      }
      float sc = (float) (amax / s.levels());
      float inv = 1f / sc;
      if (!(sc > 0) || Float.isInfinite(sc) || Float.isInfinite(inv)) {
        sc = 1f;
        inv = 1f;
      }
      scales[p] = sc;
      zps[p] = s.symmetricZeroPoint();
      for (int i = 0; i < g; i++) {
        int e = p * g + i;
        codes[e] = (byte) (int) Math.max(s.qmin(), Math.min(s.qmax(), Math.rint(w[e] * inv) + zps[p]));
      }
    }
  }

  @ParameterizedTest(name = "{0}-bit signed={1}, group {2}, {3} groups")
  @CsvSource({
      "8, true, 32, 4099", "4, true, 32, 4099", "8, false, 32, 1037", "4, false, 32, 1037",
      "2, true, 32, 333", "8, true, 64, 777", "4, true, 128, 259", "4, true, 16, 1025"})
  void symmetricGroupKernelIsBitIdenticalToTheScalarDefinitionAndTheGeneralKernel(int bits, boolean signed, int g,
      int groups) {
    QuantScheme s = QuantScheme.integer(bits, signed, true);
    float[] w = edgeWeights(groups, g, 31L * bits + g);
    int n = w.length;
    byte[] refCodes = new byte[n];
    float[] refScales = new float[groups];
    int[] refZps = new int[groups];
    reference(w, g, s, refCodes, refScales, refZps);
    MemorySegment seg = MemorySegment.ofArray(w);

    // The general kernel (butterfly ranges, per-group scales) over the same whole tensor.
    byte[] oldCodes = new byte[n];
    float[] oldScales = new float[groups];
    int[] oldZps = new int[groups];
    QuantKernels.quantizeGroups(seg, 0, groups, g, true, s.levels(), s.qmin(), s.qmax(), s.symmetricZeroPoint(),
        oldCodes, 0, oldScales, oldZps, 0);
    assertThat(oldScales).isEqualTo(refScales);
    assertThat(oldCodes).isEqualTo(refCodes);

    // The new kernel directly, on one call (a tail of groups past the last full vector of groups) ...
    int lanes = QuantKernels.F.length();
    int padded = (groups + lanes - 1) / lanes * lanes;
    byte[] codes = new byte[n];
    float[] scales = new float[groups];
    int[] zps = new int[groups];
    QuantKernels.quantizeGroupsSymmetric(seg, 0, groups, g, (float) s.levels(), s.qmin(), s.qmax(),
        s.symmetricZeroPoint(), codes, 0, scales, zps, 0, new int[padded], new float[padded], null);
    assertThat(scales).isEqualTo(refScales);
    assertThat(zps).isEqualTo(refZps);
    assertThat(codes).isEqualTo(refCodes);

    // ... and through the quantizer (chunks of groups, packing) on one and on two threads.
    QuantLayout layout = QuantLayout.perGroup(new long[] {groups, g}, 1, g);
    for (int threads : new int[] {1, 2, 3}) {
      byte[] c = new byte[n];
      float[] sc = new float[groups];
      int[] zp = new int[groups];
      byte[] packed = bits == 4 ? new byte[(n + 1) / 2] : null;
      LinearQuantizer.quantize(seg, layout, s, false, c, sc, zp, packed, threads);
      assertThat(sc).as("scales, %d threads", threads).isEqualTo(refScales);
      assertThat(zp).as("zero points, %d threads", threads).isEqualTo(refZps);
      assertThat(c).as("codes, %d threads", threads).isEqualTo(refCodes);
      if (packed != null) {
        assertThat(packed).as("packed, %d threads", threads).isEqualTo(WeightEncoder.pack(refCodes, 4));
      }
    }
  }

  @ParameterizedTest(name = "{0} columns, group 32")
  @CsvSource({"100", "48", "1000"})
  void rowsWithAPartialLastGroupStillMatchTheDefinition(int cols) {
    // Groups that do not tile the row take the general path; its tail group must agree too.
    int rows = 37;
    int g = 32;
    QuantScheme s = QuantScheme.integer(8, true, true);
    float[] w = edgeWeights(rows * cols / 4, 4, cols); // recipes change every 4 weights
    QuantLayout layout = QuantLayout.perGroup(new long[] {rows, cols}, 1, g);
    LinearQuantizer.Result q = LinearQuantizer.quantize(w, layout, s, false);
    int perRow = (cols + g - 1) / g;
    for (int r = 0; r < rows; r++) {
      for (int b = 0; b < perRow; b++) {
        int len = Math.min(g, cols - b * g);
        float[] group = new float[len];
        System.arraycopy(w, r * cols + b * g, group, 0, len);
        byte[] c = new byte[len];
        float[] sc = new float[1];
        int[] zp = new int[1];
        reference(group, len, s, c, sc, zp);
        int p = r * perRow + b;
        assertThat(q.scales()[p]).as("scale of group %d", p).isEqualTo(sc[0]);
        for (int i = 0; i < len; i++) {
          assertThat(q.codes()[r * cols + b * g + i]).as("row %d group %d element %d", r, b, i).isEqualTo(c[i]);
        }
      }
    }
  }
}
