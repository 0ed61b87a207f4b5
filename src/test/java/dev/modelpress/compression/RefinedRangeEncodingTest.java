package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.compression.QuantizeSpec.RangeMethod;
import dev.modelpress.compression.quantize.LinearQuantizer;
import dev.modelpress.compression.quantize.QuantLayout;
import dev.modelpress.compression.quantize.QuantScheme;
import dev.modelpress.compression.quantize.RangeRefiner;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Refined ranges ({@code lsq}, {@code hqq}) end to end: the fractional zero points reach ONNX
 * Runtime through MatMulNBits' float zero points or the unpack subgraph, and decode to exactly what
 * the quantizer computed.
 */
class RefinedRangeEncodingTest {

  static final int K = 128;
  static final int N = 24;

  @TempDir Path dir;

  static QuantizeSpec spec(int bits, boolean signed, RangeMethod range, QuantizeSpec.Format format) {
    return new QuantizeSpec(bits, false, Granularity.GROUP, List.of(), List.of(), 32, null, signed, null, range, format);
  }

  @ParameterizedTest
  @CsvSource({
      "13, 4, true, LSQ, AUTO, MatMulNBits",
      "21, 4, false, LSQ, AUTO, MatMulNBits",
      "21, 4, true, HQQ, AUTO, MatMulNBits",
      "13, 4, true, LSQ, QDQ, packed+unpack",
      "21, 4, false, HQQ, QDQ, packed+unpack",
      "21, 8, true, LSQ, AUTO, packed+unpack",
      "13, 2, false, LSQ, AUTO, packed+unpack"})
  void identityInputReturnsTheRefinedDecodedWeight(long opset, int bits, boolean signed, RangeMethod range,
      QuantizeSpec.Format format, String encoding) throws Exception {
    float[] w = WeightCastAndRangeTest.heavyTailed();
    w = java.util.Arrays.copyOf(w, K * N);
    ModelProto original = OnnxGraphBuilder.opset(opset).irVersion(opset >= 21 ? 10 : 8).input("x", K, K)
        .initializer("W", w, K, N).matMul("x", "W", "y").output("y").build();
    PipelineResult r = OnnxPipeline.run(original, List.of(spec(bits, signed, range, format)), Progress.NONE);
    TensorReport t = r.steps().get(0).tensors().get(0);
    assertThat(t.encoding()).isEqualTo(encoding);
    assertThat(t.range()).isEqualTo(range.name().toLowerCase(java.util.Locale.ROOT));
    assertThat(t.clipRatio()).isBetween(0.3, 1.2);
    assertThat(Models.opTypes(r.model())).doesNotContain("DequantizeLinear");

    QuantScheme scheme = QuantScheme.integer(bits, signed, false);
    QuantLayout layout = QuantLayout.perGroup(new long[] {K, N}, 0, 32);
    LinearQuantizer.Result q = RangeRefiner.quantize(w, layout, scheme, RangeRefiner.Method.valueOf(range.name()));
    float[] expected = LinearQuantizer.dequantize(q, layout, scheme);
    float[] eye = new float[K * K];
    for (int i = 0; i < K; i++) {
      eye[i * K + i] = 1;
    }
    double maxAbs = 0;
    for (float v : w) {
      maxAbs = Math.max(maxAbs, Math.abs(v));
    }
    try (OrtRunner ort = OrtRunner.unfused(OnnxGraphBuilder.write(r.model(), dir))) {
      float[] decoded = ort.run("y", "x", eye, K, K);
      for (int i = 0; i < expected.length; i++) {
        // Within float rounding: the unpack subgraph subtracts zp − qmin (a float, rounded) from the
        // stored code q − qmin, and MatMulNBits may fold (q − zp)·s as q·s − zp·s.
        assertThat((double) Math.abs(decoded[i] - expected[i])).isLessThanOrEqualTo(1e-6 * maxAbs);
      }
    }
    // The weight error the report shows is the refined one: below the MSE search's.
    TensorReport mse = OnnxPipeline.run(original, List.of(spec(bits, signed, RangeMethod.MSE, format)), Progress.NONE)
        .steps().get(0).tensors().get(0);
    if (range == RangeMethod.LSQ) {
      assertThat(t.mse()).isLessThan(mse.mse());
    }
    // 32-bit zero points: one float per 32 weights on top of the codes and scales.
    assertThat(t.bitsPerWeight()).isBetween(bits + 2.0, bits + 2.6);
  }

  @Test
  void refinedRangesAreRejectedForBinaryAndTernaryGrids() {
    ModelProto m = OnnxGraphBuilder.opset(13).input("x", 2, K).initializer("W", new float[K * N], K, N)
        .matMul("x", "W", "y").output("y").build();
    QuantizeSpec binary = new QuantizeSpec(1, true, Granularity.CHANNEL, List.of(), List.of(), null, null, true, null,
        RangeMethod.LSQ, null);
    QuantizeSpec ternary = new QuantizeSpec(2, true, Granularity.CHANNEL, List.of(), List.of(), null,
        QuantizeSpec.Scheme.TERNARY, true, null, RangeMethod.HQQ, null);
    for (QuantizeSpec s : List.of(binary, ternary)) {
      assertThat(SpecValidator.validate(List.of(s), OnnxModels.summarize(m))).singleElement().satisfies(v -> {
        assertThat(v.field()).isEqualTo("steps[0].weights.range");
        assertThat(v.message()).contains("integer grids");
      });
    }
    assertThat(SpecValidator.validate(List.of(spec(4, true, RangeMethod.LSQ, QuantizeSpec.Format.AUTO)),
        OnnxModels.summarize(m))).isEmpty();
  }
}
