package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.compression.QuantizeSpec.RangeMethod;
import dev.modelpress.compression.QuantizeSpec.WeightType;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** fp16/bf16 casts, fp16 models left alone, MSE range search, and the opset rules of the encodings. */
class WeightCastAndRangeTest {

  static final int K = 256;
  static final int N = 64;

  @TempDir Path dir;

  static ModelProto matMul(long opset, float[] w) {
    return OnnxGraphBuilder.opset(opset).input("x", 2, K).initializer("W", w, K, N).matMul("x", "W", "y").output("y")
        .build();
  }

  /** Gaussian-like weights with a few large outliers, where clipping pays. */
  static float[] heavyTailed() {
    java.util.Random r = new java.util.Random(3);
    float[] w = new float[K * N];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (r.nextGaussian() * 0.02 * (r.nextInt(100) == 0 ? 8 : 1));
    }
    return w;
  }

  @ParameterizedTest
  @EnumSource(value = WeightType.class, names = {"FP16", "BF16"})
  void castHalvesTheWeightAndRunsWithinHalfAnUlp(WeightType dtype) throws Exception {
    float[] w = heavyTailed();
    ModelProto original = matMul(13, w);
    PipelineResult r = OnnxPipeline.run(original, List.of(QuantizeSpec.cast(dtype)), Progress.NONE);
    TensorReport t = r.steps().get(0).tensors().get(0);
    assertThat(t.bytesAfter()).isEqualTo(2L * w.length);
    assertThat(t.bitsPerWeight()).isEqualTo(16.0);
    assertThat(t.encoding()).isEqualTo("Cast");
    assertThat(Models.opTypes(r.model())).containsExactly("Cast", "MatMul");
    TensorProto stored = r.model().getGraph().getInitializerList().stream()
        .filter(i -> i.getName().startsWith("W_")).findFirst().orElseThrow();
    assertThat(stored.getDataType()).isEqualTo(dtype == WeightType.FP16 ? TensorProto.DataType.FLOAT16_VALUE
        : TensorProto.DataType.BFLOAT16_VALUE);
    Path a = OnnxGraphBuilder.write(original, dir);
    Path b = OnnxGraphBuilder.write(r.model(), dir);
    assertThat((double) Files.size(b) / Files.size(a)).isBetween(0.49, 0.52);
    // Relative rounding error of one weight: 2^-11 (fp16, normal range) or 2^-8 (bf16); the
    // output error is at most that times Σ|x|·|w|.
    double eps = dtype == WeightType.FP16 ? Math.scalb(1.0, -11) : Math.scalb(1.0, -8);
    float[] x = OnnxGraphBuilder.randomFloats(5, 2 * K, 1f);
    try (OrtRunner fp32 = new OrtRunner(a); OrtRunner cast = new OrtRunner(b)) {
      float[] expected = fp32.run("y", "x", x, 2, K);
      float[] actual = cast.run("y", "x", x, 2, K);
      for (int m = 0; m < 2; m++) {
        for (int n = 0; n < N; n++) {
          double bound = 0;
          for (int k = 0; k < K; k++) {
            bound += Math.abs(x[m * K + k] * w[k * N + n]);
          }
          assertThat((double) Math.abs(actual[m * N + n] - expected[m * N + n])).isLessThanOrEqualTo(bound * eps + 1e-5);
        }
      }
    }
    System.out.printf("%s cast: SQNR %.1f dB%n", dtype, t.sqnrDb());
    assertThat(t.sqnrDb()).isGreaterThan(dtype == WeightType.FP16 ? 60 : 40);
  }

  @Test
  void fp16CastKeepsAnFp16WeightAsItIs() {
    float[] w = OnnxGraphBuilder.randomFloats(2, K * N, 1f);
    TensorProto half = OnnxTensors.withFloats(
        OnnxTensors.floatTensor("W", w, K, N).toBuilder().setDataType(TensorProto.DataType.FLOAT16_VALUE).build(), w);
    ModelProto m = OnnxGraphBuilder.opset(13).input("x", TensorProto.DataType.FLOAT16, 2, K).initializer(half)
        .matMul("x", "W", "y").output("y", TensorProto.DataType.FLOAT16).build();
    PipelineResult r = OnnxPipeline.run(m, List.of(QuantizeSpec.cast(WeightType.FP16)), Progress.NONE);
    assertThat(r.model().getGraph().getInitializer(0)).isEqualTo(half);
    assertThat(r.steps().get(0).tensors().get(0).encoding()).isEqualTo("unchanged");
  }

  @Test
  void bf16IsRejectedBeforeOpset13AndSubByteBeforeOpset11() {
    ModelProto old = matMul(10, OnnxGraphBuilder.randomFloats(2, K * N, 1f));
    assertThat(SpecValidator.validate(List.of(QuantizeSpec.cast(WeightType.BF16)), OnnxModels.summarize(old)))
        .extracting(Violation::field).containsExactly("steps[0].weights.dtype");
    assertThat(SpecValidator.validate(List.of(QuantizeSpec.integer(4, true, Granularity.CHANNEL, null, null)),
        OnnxModels.summarize(old))).extracting(Violation::field).containsExactly("steps[0].weights.bits");
  }

  @Test
  void mseClippingLowersTheWeightErrorAndClipsOutliers() {
    ModelProto m = matMul(13, heavyTailed());
    for (int bits : new int[] {2, 4, 8}) {
      TensorReport minmax = report(m, QuantizeSpec.integer(bits, true, Granularity.CHANNEL, null, RangeMethod.MINMAX));
      TensorReport mse = report(m, QuantizeSpec.integer(bits, true, Granularity.CHANNEL, null, RangeMethod.MSE));
      System.out.printf("int%d per-channel: min/max MSE %.3g, searched MSE %.3g (clip ratio %.3f)%n", bits,
          minmax.mse(), mse.mse(), mse.clipRatio());
      assertThat(minmax.clipRatio()).isEqualTo(1.0);
      assertThat(mse.mse()).isLessThanOrEqualTo(minmax.mse());
      if (bits <= 4) {
        // With 1% outliers 8× the rest, low-bit grids gain by clipping them.
        assertThat(mse.mse()).isLessThan(minmax.mse() * 0.9);
        assertThat(mse.clipRatio()).isLessThan(0.9);
      }
    }
  }

  @Test
  void ternaryMseSearchBeatsTheTwnThreshold() {
    ModelProto m = matMul(13, heavyTailed());
    QuantizeSpec twn = new QuantizeSpec(2, true, Granularity.CHANNEL, List.of(), List.of(), null,
        QuantizeSpec.Scheme.TERNARY, true, null, RangeMethod.MINMAX, null);
    QuantizeSpec searched = new QuantizeSpec(2, true, Granularity.CHANNEL, List.of(), List.of(), null,
        QuantizeSpec.Scheme.TERNARY, true, null, RangeMethod.MSE, null);
    TensorReport a = report(m, twn);
    TensorReport b = report(m, searched);
    assertThat(a.scheme()).isEqualTo("ternary");
    assertThat(b.mse()).isLessThanOrEqualTo(a.mse());
    // TWN's Δ = 0.7·mean|w| and a ternary code keeps about a third of Gaussian weights at zero.
    assertThat(a.sparsityAfter()).isBetween(0.3, 0.6);
  }

  private static TensorReport report(ModelProto m, QuantizeSpec spec) {
    return OnnxPipeline.run(m, List.of(spec), Progress.NONE).steps().get(0).tensors().get(0);
  }
}
