package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class WeightQuantizerTest {

  static final int M = 3;
  static final int K = 16;
  static final int N = 8;

  @TempDir Path dir;

  /** Weight columns (output channels) with very different ranges, which per-channel scales exploit. */
  static float[] unequalColumns(long seed, int k, int n, boolean transposed) {
    float[] base = OnnxGraphBuilder.randomFloats(seed, k * n, 1f);
    float[] w = new float[k * n];
    for (int r = 0; r < k; r++) {
      for (int c = 0; c < n; c++) {
        float factor = (float) Math.pow(2, c - 3);
        if (transposed) {
          w[c * k + r] = base[c * k + r] * factor;
        } else {
          w[r * n + c] = base[r * n + c] * factor;
        }
      }
    }
    return w;
  }

  enum Op { MATMUL, GEMM, GEMM_TRANS_B, CONV }

  static Stream<Arguments> cases() {
    List<Arguments> all = new ArrayList<>();
    for (long opset : new long[] {11, 13}) {
      for (Op op : Op.values()) {
        for (Granularity g : List.of(Granularity.TENSOR, Granularity.CHANNEL)) {
          for (boolean symmetric : new boolean[] {true, false}) {
            all.add(Arguments.of(opset, op, g, symmetric));
          }
        }
      }
    }
    return all.stream();
  }

  static ModelProto model(long opset, Op op) {
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(opset);
    return switch (op) {
      case MATMUL -> b.input("x", M, K).initializer("W", unequalColumns(1, K, N, false), K, N)
          .matMul("x", "W", "y").output("y").build();
      case GEMM -> b.input("x", M, K).initializer("W", unequalColumns(2, K, N, false), K, N)
          .initializer("c", OnnxGraphBuilder.randomFloats(5, N, 1f), N)
          .gemm("x", "W", "c", "y", false).output("y").build();
      case GEMM_TRANS_B -> b.input("x", M, K).initializer("W", unequalColumns(3, K, N, true), N, K)
          .gemm("x", "W", null, "y", true).output("y").build();
      // W [out=4, in=3, 3, 3]; input [1, 3, 6, 6], pad 1: output [1, 4, 6, 6].
      case CONV -> b.input("x", 1, 3, 6, 6).initializer("W", unequalColumns(4, 27, 4, true), 4, 3, 3, 3)
          .conv("x", "W", null, "y", 1).output("y").build();
    };
  }

  static float[] input(Op op) {
    return OnnxGraphBuilder.randomFloats(11, op == Op.CONV ? 3 * 36 : M * K, 2f);
  }

  static long[] inputShape(Op op) {
    return op == Op.CONV ? new long[] {1, 3, 6, 6} : new long[] {M, K};
  }

  /**
   * The worst-case output error when each weight is off by at most scale/2: for every output
   * element, the sum over its inputs of |x| * (scale of its output channel) / 2.
   */
  static float[] errorBound(Op op, float[] x, float[] scales) {
    if (op == Op.CONV) {
      float[] bound = new float[4 * 36];
      for (int oc = 0; oc < 4; oc++) {
        float s = scales.length == 1 ? scales[0] : scales[oc];
        for (int h = 0; h < 6; h++) {
          for (int w = 0; w < 6; w++) {
            double sum = 0;
            for (int c = 0; c < 3; c++) {
              for (int kh = -1; kh <= 1; kh++) {
                for (int kw = -1; kw <= 1; kw++) {
                  int ih = h + kh;
                  int iw = w + kw;
                  if (ih >= 0 && ih < 6 && iw >= 0 && iw < 6) {
                    sum += Math.abs(x[c * 36 + ih * 6 + iw]);
                  }
                }
              }
            }
            bound[oc * 36 + h * 6 + w] = (float) (sum * s / 2);
          }
        }
      }
      return bound;
    }
    float[] bound = new float[M * N];
    for (int m = 0; m < M; m++) {
      double absRow = 0;
      for (int k = 0; k < K; k++) {
        absRow += Math.abs(x[m * K + k]);
      }
      for (int n = 0; n < N; n++) {
        bound[m * N + n] = (float) (absRow * (scales.length == 1 ? scales[0] : scales[n]) / 2);
      }
    }
    return bound;
  }

  static ModelProto quantize(ModelProto m, boolean symmetric, Granularity g) {
    return OnnxPipeline.run(m, List.of(QuantizeSpec.int8(symmetric, g)), Progress.NONE).model();
  }

  @ParameterizedTest(name = "opset {0} {1} {2} symmetric={3}")
  @MethodSource("cases")
  void quantizedModelRunsInOrtWithinTheoreticalErrorBound(long opset, Op op, Granularity g, boolean symmetric) {
    ModelProto original = model(opset, op);
    ModelProto quantized = quantize(original, symmetric, g);

    TensorProto codes = Models.initializer(quantized, "W_quantized");
    assertThat(codes.getDataType()).isEqualTo(TensorProto.DataType.INT8_VALUE);
    assertThat(codes.getRawData().size() * 4).isEqualTo(Models.initializer(original, "W").getRawData().size());
    assertThat(Models.hasInitializer(quantized, "W")).isFalse();
    float[] scales = Models.floats(quantized, "W_scale");
    int channels = op == Op.CONV ? 4 : N;
    assertThat(scales).hasSize(g == Granularity.CHANNEL ? channels : 1);

    boolean dequantizeLinear = opset >= 13 || g == Granularity.TENSOR;
    if (dequantizeLinear) {
      assertThat(Models.opTypes(quantized)).contains("DequantizeLinear").doesNotContain("Cast");
    } else {
      assertThat(Models.opTypes(quantized)).contains("Cast", "Mul").doesNotContain("DequantizeLinear");
    }
    assertThat(quantized.getOpsetImport(0).getVersion()).isEqualTo(opset);

    float[] x = input(op);
    float[] expected;
    float[] actual;
    try (OrtRunner a = new OrtRunner(OnnxGraphBuilder.write(original, dir));
        OrtRunner b = new OrtRunner(OnnxGraphBuilder.write(quantized, dir))) {
      expected = a.run("y", "x", x, inputShape(op));
      actual = b.run("y", "x", x, inputShape(op));
    }
    float[] bound = errorBound(op, x, scales);
    double worstUse = 0;
    for (int i = 0; i < expected.length; i++) {
      double err = Math.abs(actual[i] - expected[i]);
      assertThat(err).as("output %d", i).isLessThanOrEqualTo(bound[i] * 1.0001 + 1e-5);
      worstUse = Math.max(worstUse, err / bound[i]);
    }
    // The bound is loose but the error is a real fraction of it, not zero (quantization happened).
    assertThat(worstUse).isGreaterThan(0.01);
  }

  @Test
  void perChannelErrorIsBelowPerTensorErrorOnUnequalColumns() {
    ModelProto original = model(13, Op.MATMUL);
    double perTensor = report(original, true, Granularity.TENSOR).mse();
    double perChannel = report(original, true, Granularity.CHANNEL).mse();
    // Columns span 2^-3 .. 2^4: per-tensor step is set by the widest column for all of them.
    assertThat(perChannel).isLessThan(perTensor / 5);
  }

  @Test
  void asymmetricBeatsSymmetricOnAllPositiveWeight() {
    float[] w = OnnxGraphBuilder.randomFloats(8, K * N, 1f);
    for (int i = 0; i < w.length; i++) {
      w[i] = Math.abs(w[i]);
    }
    ModelProto m = OnnxGraphBuilder.opset(13).input("x", M, K).initializer("W", w, K, N)
        .matMul("x", "W", "y").output("y").build();
    TensorReport symmetric = report(m, true, Granularity.TENSOR);
    TensorReport asymmetric = report(m, false, Granularity.TENSOR);
    // Symmetric wastes the negative half of the codes: about twice the step, four times the MSE.
    assertThat(asymmetric.mse()).isLessThan(symmetric.mse() / 3);
    assertThat(asymmetric.sqnrDb()).isGreaterThan(symmetric.sqnrDb() + 5);
    assertThat(Models.int8(quantize(m, false, Granularity.TENSOR), "W_zero_point")).containsExactly((byte) -128);
  }

  @Test
  void allZeroChannelDecodesToZerosWithoutDividingByZero() {
    float[] w = OnnxGraphBuilder.randomFloats(4, K * N, 1f);
    for (int r = 0; r < K; r++) {
      w[r * N + 2] = 0f;
    }
    ModelProto m = OnnxGraphBuilder.opset(13).input("x", K, K).initializer("W", w, K, N)
        .matMul("x", "W", "y").output("y").build();
    for (boolean symmetric : new boolean[] {true, false}) {
      ModelProto q = quantize(m, symmetric, Granularity.CHANNEL);
      float[] scales = Models.floats(q, "W_scale");
      for (float s : scales) {
        assertThat(s).isPositive().isFinite();
      }
      assertThat(scales[2]).isEqualTo(1f);
      float[] decoded = decodeWithIdentity(q);
      for (int r = 0; r < K; r++) {
        assertThat(decoded[r * N + 2]).isEqualTo(0f);
      }
    }
  }

  @Test
  void removesQuantizedInitializerFromGraphInputsOfOldIrModels() {
    ModelProto m = OnnxGraphBuilder.opset(11).irVersion(3)
        .input("x", M, K).initializerAlsoInput("W", K, N)
        .initializer("W", unequalColumns(1, K, N, false), K, N)
        .matMul("x", "W", "y").output("y").build();
    ModelProto q = quantize(m, true, Granularity.CHANNEL);
    assertThat(q.getGraph().getInputList()).extracting(v -> v.getName()).containsExactly("x");
    try (OrtRunner ort = new OrtRunner(OnnxGraphBuilder.write(q, dir))) {
      assertThat(ort.run("y", "x", input(Op.MATMUL), M, K)).hasSize(M * N);
    }
  }

  @Test
  void sharedWeightIsDecodedOnceForAllConsumers() {
    ModelProto m = OnnxGraphBuilder.opset(13).input("x", M, K)
        .initializer("W", unequalColumns(1, K, K, false), K, K)
        .matMul("x", "W", "h").matMul("h", "W", "y").output("y").build();
    ModelProto q = quantize(m, true, Granularity.CHANNEL);
    assertThat(Models.opTypes(q)).containsExactly("DequantizeLinear", "MatMul", "MatMul");
    try (OrtRunner ort = new OrtRunner(OnnxGraphBuilder.write(q, dir))) {
      assertThat(ort.run("y", "x", input(Op.MATMUL), M, K)).hasSize(M * K);
    }
  }

  @ParameterizedTest(name = "opset {0}")
  @org.junit.jupiter.params.provider.ValueSource(longs = {11, 13})
  void convTransposeWeightIsQuantizedPerOutputChannelOnAxisOne(long opset) {
    // ConvTranspose W is [C_in=3, C_out=4, 3, 3]: output channels are axis 1.
    ModelProto m = OnnxGraphBuilder.opset(opset).input("x", 1, 3, 5, 5)
        .initializer("W", OnnxGraphBuilder.randomFloats(6, 3 * 4 * 9, 1f), 3, 4, 3, 3)
        .node("ConvTranspose", List.of("x", "W"), List.of("y")).output("y").build();
    ModelProto q = quantize(m, true, Granularity.CHANNEL);
    assertThat(Models.floats(q, "W_scale")).hasSize(4);
    assertThat(Models.initializer(q, "W_scale").getDimsList())
        .containsExactly(opset >= 13 ? new Long[] {4L} : new Long[] {4L, 1L, 1L});
    float[] x = OnnxGraphBuilder.randomFloats(12, 75, 1f);
    try (OrtRunner a = new OrtRunner(OnnxGraphBuilder.write(m, dir));
        OrtRunner b = new OrtRunner(OnnxGraphBuilder.write(q, dir))) {
      float[] expected = a.run("y", "x", x, 1, 3, 5, 5);
      float[] actual = b.run("y", "x", x, 1, 3, 5, 5);
      assertThat(actual).hasSize(4 * 7 * 7);
      double maxErr = 0;
      for (int i = 0; i < expected.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(expected[i] - actual[i]));
      }
      // At most 27 inputs of |x| < 1 times scale/2 < 1/254 each.
      assertThat(maxErr).isLessThan(27 / 254.0).isPositive();
    }
  }

  /** Runs x = identity through a [K, N] MatMul model, which returns the decoded weight exactly. */
  private float[] decodeWithIdentity(ModelProto q) {
    float[] eye = new float[K * K];
    for (int i = 0; i < K; i++) {
      eye[i * K + i] = 1f;
    }
    try (OrtRunner ort = OrtRunner.unfused(OnnxGraphBuilder.write(q, dir))) {
      return ort.run("y", "x", eye, K, K);
    }
  }

  private static TensorReport report(ModelProto m, boolean symmetric, Granularity g) {
    PipelineResult r = OnnxPipeline.run(m, List.of(QuantizeSpec.int8(symmetric, g)), Progress.NONE);
    TensorReport t = r.steps().get(0).tensors().get(0);
    System.out.printf("quantize %s symmetric=%s: mse=%.3g sqnr=%.2f dB%n", g, symmetric, t.mse(), t.sqnrDb());
    return t;
  }
}
