package dev.modelpress.compression.quantize;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.testing.OnnxGraphBuilder;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The vector kernels against a scalar reading of the same definitions. */
class LinearQuantizerTest {

  @ParameterizedTest(name = "group {0}")
  @ValueSource(ints = {32, 64, 128, 256})
  void wholeGroupLoopAndFusedPackingMatchTheDefinition(int g) {
    int rows = 7;
    int cols = 512;
    float[] w = OnnxGraphBuilder.randomFloats(g, rows * cols, 3f);
    for (boolean symmetric : new boolean[] {true, false}) {
      for (boolean signed : new boolean[] {true, false}) {
        QuantScheme s = QuantScheme.integer(4, signed, symmetric);
        QuantLayout layout = QuantLayout.perGroup(new long[] {rows, cols}, 1, g);
        byte[] codes = new byte[w.length];
        byte[] packed = new byte[w.length / 2];
        float[] scales = new float[layout.params()];
        int[] zps = new int[layout.params()];
        LinearQuantizer.quantize(MemorySegment.ofArray(w), layout, s, false, codes, scales, zps, packed);
        assertThat(packed).isEqualTo(WeightEncoder.pack(codes, 4));
        for (int p = 0; p < scales.length; p++) {
          double lo = 0;
          double hi = 0;
          for (int j = 0; j < g; j++) {
            lo = Math.min(lo, w[p * g + j]);
            hi = Math.max(hi, w[p * g + j]);
          }
          float scale = (float) (symmetric ? Math.max(-lo, hi) / 7 : (hi - lo) / 15);
          assertThat(scales[p]).isEqualTo(scale);
          for (int j = 0; j < g; j++) {
            int e = p * g + j;
            int expected = (int) Math.max(s.qmin(), Math.min(s.qmax(), Math.rint(w[e] * (1f / scale)) + zps[p]));
            assertThat(LinearQuantizer.code(codes[e], s)).as("element %d", e).isEqualTo(expected);
          }
        }
      }
    }
  }

  @ParameterizedTest(name = "{0} elements")
  @ValueSource(ints = {1, 2, 7, 8, 9, 63, 64, 1001})
  void pack4PutsTheFirstCodeInTheLowNibble(int n) {
    byte[] codes = new byte[n];
    for (int i = 0; i < n; i++) {
      codes[i] = (byte) ((i * 7 + 3) & 0x0F);
    }
    byte[] out = new byte[(n + 1) / 2];
    QuantKernels.pack4(codes, 0, n, out, 0);
    for (int i = 0; i < n; i++) {
      int nibble = (out[i / 2] >> (4 * (i % 2))) & 0x0F;
      assertThat(nibble).as("code %d", i).isEqualTo(codes[i]);
    }
  }
}
