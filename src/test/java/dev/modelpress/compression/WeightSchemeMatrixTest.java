package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.QuantizeSpec.Format;
import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.compression.QuantizeSpec.RangeMethod;
import dev.modelpress.compression.QuantizeSpec.Scheme;
import dev.modelpress.compression.quantize.LinearQuantizer;
import dev.modelpress.compression.quantize.QuantLayout;
import dev.modelpress.compression.quantize.QuantScheme;
import dev.modelpress.compression.quantize.WeightAxes;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every weight scheme × granularity × op × opset: the emitted model runs in ONNX Runtime, decodes
 * exactly the values the quantizer chose, its output error stays within the scheme's theoretical
 * bound, and the weight's storage shrinks by the scheme's factor.
 */
class WeightSchemeMatrixTest {

  static final int M = 4;
  static final int K = 128;
  static final int N = 24;

  @TempDir Path dir;

  enum Op { MATMUL, GEMM_TRANS_B, CONV }

  /** bits, scheme, signed. */
  record Grid(int bits, Scheme scheme, boolean signed) {
    @Override
    public String toString() {
      return scheme == Scheme.TERNARY ? "ternary" : bits == 1 ? "binary" : (signed ? "int" : "uint") + bits;
    }
  }

  static Stream<Arguments> cases() {
    List<Grid> grids = List.of(new Grid(8, Scheme.INTEGER, true), new Grid(8, Scheme.INTEGER, false),
        new Grid(4, Scheme.INTEGER, true), new Grid(4, Scheme.INTEGER, false), new Grid(2, Scheme.INTEGER, true),
        new Grid(1, Scheme.INTEGER, true), new Grid(2, Scheme.TERNARY, true));
    List<Arguments> all = new ArrayList<>();
    for (long opset : new long[] {13, 21}) {
      for (Op op : Op.values()) {
        for (Grid grid : grids) {
          for (boolean symmetric : new boolean[] {true, false}) {
            if (!symmetric && (grid.bits() == 1 || grid.scheme() == Scheme.TERNARY)) {
              continue;
            }
            for (Integer group : new Integer[] {null, -1, 32, 64, 256}) {
              all.add(Arguments.of(opset, op, grid, symmetric, group == null ? Granularity.TENSOR
                  : group < 0 ? Granularity.CHANNEL : Granularity.GROUP, group == null || group < 0 ? null : group));
            }
          }
        }
      }
    }
    return all.stream();
  }

  /** A weight whose output channels span 2^-3 .. 2^3 in magnitude, laid out for the op. */
  static float[] weight(Op op) {
    float[] base = OnnxGraphBuilder.randomFloats(op.ordinal() + 7, K * N, 1f);
    float[] w = new float[K * N];
    for (int i = 0; i < w.length; i++) {
      int channel = switch (op) {
        case MATMUL -> i % N;
        case GEMM_TRANS_B -> i / K;
        case CONV -> i / (16 * 9);
      };
      w[i] = base[i] * (float) Math.pow(2, channel % 7 - 3);
    }
    return op == Op.CONV ? java.util.Arrays.copyOf(w, 8 * 16 * 9) : w;
  }

  static long[] weightDims(Op op) {
    return switch (op) {
      case MATMUL -> new long[] {K, N};
      case GEMM_TRANS_B -> new long[] {N, K};
      case CONV -> new long[] {8, 16, 3, 3};
    };
  }

  static ModelProto model(long opset, Op op, float[] w) {
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(opset).irVersion(opset >= 21 ? 10 : 8);
    return switch (op) {
      case MATMUL -> b.input("x", M, K).initializer("W", w, K, N).matMul("x", "W", "y").output("y").build();
      case GEMM_TRANS_B -> b.input("x", M, K).initializer("W", w, N, K).gemm("x", "W", null, "y", true).output("y").build();
      case CONV -> b.input("x", 1, 16, 6, 6).initializer("W", w, 8, 16, 3, 3).conv("x", "W", null, "y", 1).output("y")
          .build();
    };
  }

  static long[] inputShape(Op op) {
    return op == Op.CONV ? new long[] {1, 16, 6, 6} : new long[] {M, K};
  }

  @ParameterizedTest(name = "opset {0} {1} {2} symmetric={3} {4} {5}")
  @MethodSource("cases")
  void emittedModelRunsInOrtWithinTheBoundAndShrinks(long opset, Op op, Grid grid, boolean symmetric,
      Granularity granularity, Integer groupSize) throws Exception {
    float[] w = weight(op);
    long[] dims = weightDims(op);
    ModelProto original = model(opset, op, w);
    QuantizeSpec spec = new QuantizeSpec(grid.bits(), symmetric, granularity, List.of(), List.of(), groupSize,
        grid.scheme(), grid.signed(), null, RangeMethod.MINMAX, Format.AUTO);
    assertThat(SpecValidator.validate(List.of(spec), OnnxModels.summarize(original))).isEmpty();
    PipelineResult result = OnnxPipeline.run(original, List.of(spec), Progress.NONE);
    ModelProto quantized = result.model();
    TensorReport report = result.steps().get(0).tensors().get(0);

    // What the quantizer chose, recomputed: the ONNX must decode exactly these values.
    QuantScheme scheme = WeightOnlyQuantization.scheme(spec);
    WeightAxes.Axes axes = WeightAxes.of(original.getGraph()).of("W", dims.length);
    QuantLayout layout = switch (granularity) {
      case TENSOR -> QuantLayout.perTensor(dims);
      case CHANNEL -> QuantLayout.perChannel(dims, axes.channel());
      case GROUP -> QuantLayout.perGroup(dims, axes.reduction(), groupSize);
    };
    LinearQuantizer.Result q = LinearQuantizer.quantize(w, layout, scheme, false);
    float[] decoded = LinearQuantizer.dequantize(q, layout, scheme);

    // Per-weight error bound of the scheme: half a step for integer grids (the min/max range
    // covers every weight), max(α, max|w| − α) for sign grids (α ≥ threshold for ternary).
    float[] bound = new float[w.length];
    float[] maxAbs = new float[q.scales().length];
    for (int e = 0; e < w.length; e++) {
      int p = paramOf(layout, e);
      maxAbs[p] = Math.max(maxAbs[p], Math.abs(w[e]));
    }
    for (int e = 0; e < w.length; e++) {
      int p = paramOf(layout, e);
      float s = q.scales()[p];
      bound[e] = scheme.kind() == QuantScheme.Kind.INTEGER ? s / 2 : Math.max(s, maxAbs[p] - s);
      assertThat((double) Math.abs(w[e] - decoded[e])).as("weight %d", e).isLessThanOrEqualTo(bound[e] * 1.0001 + 1e-7);
    }

    Path originalFile = OnnxGraphBuilder.write(original, dir);
    Path quantizedFile = OnnxGraphBuilder.write(quantized, dir);
    Path boundFile = OnnxGraphBuilder.write(model(opset, op, bound), dir);
    float[] x = OnnxGraphBuilder.randomFloats(11, (int) java.util.Arrays.stream(inputShape(op)).reduce(1, (a, c) -> a * c), 2f);
    float[] absX = x.clone();
    for (int i = 0; i < absX.length; i++) {
      absX[i] = Math.abs(absX[i]);
    }
    float[] expected;
    float[] actual;
    float[] outBound;
    try (OrtRunner a = new OrtRunner(originalFile); OrtRunner b = new OrtRunner(quantizedFile);
        OrtRunner c = new OrtRunner(boundFile)) {
      expected = a.run("y", "x", x, inputShape(op));
      actual = b.run("y", "x", x, inputShape(op));
      // The ops are linear: Σ|x|·bound is the model with |x| and bound as the weight.
      outBound = c.run("y", "x", absX, inputShape(op));
    }
    double worst = 0;
    for (int i = 0; i < expected.length; i++) {
      double err = Math.abs(actual[i] - expected[i]);
      assertThat(err).as("output %d", i).isLessThanOrEqualTo(outBound[i] * 1.001 + 1e-4);
      worst = Math.max(worst, err / outBound[i]);
    }
    assertThat(worst).as("quantization changed the output").isGreaterThan(1e-3);

    if (op == Op.MATMUL) {
      // x = identity returns the decoded weight: bit-exact for standard operators; MatMulNBits
      // accumulates in its own order.
      float[] eye = new float[K * K];
      for (int i = 0; i < K; i++) {
        eye[i * K + i] = 1f;
      }
      Path eyeModel = OnnxGraphBuilder.write(
          OnnxGraphBuilder.opset(opset).build().toBuilder().setGraph(quantized.getGraph().toBuilder()
              .setInput(0, quantized.getGraph().getInput(0).toBuilder().setType(
                  OnnxGraphBuilder.opset(opset).input("x", K, K).build().getGraph().getInput(0).getType()))).build()
              .toBuilder().clearOpsetImport().addAllOpsetImport(quantized.getOpsetImportList())
              .setIrVersion(quantized.getIrVersion()).build(), dir);
      try (OrtRunner ort = OrtRunner.unfused(eyeModel)) {
        float[] viaOrt = ort.run("y", "x", eye, K, K);
        for (int i = 0; i < decoded.length; i++) {
          if (report.encoding().equals("MatMulNBits")) {
            assertThat(viaOrt[i]).as("element %d", i).isCloseTo(decoded[i], org.assertj.core.data.Offset.offset(1e-5f));
          } else {
            assertThat(viaOrt[i]).as("element %d", i).isEqualTo(decoded[i]);
          }
        }
      }
    }

    // Storage: codes at the scheme's bits + 4-byte scales (+ zero points, at most 4 bytes each;
    // symmetric grids store none per set) +
    // a few hundred bytes of shape constants; the file saves that much less protobuf framing.
    int storageBits = grid.bits();
    // DequantizeLinear-21 takes a short last block; the unpack view and MatMulNBits pad it.
    boolean pads = layout.padded() && !report.encoding().equals("DequantizeLinear");
    long padded = pads ? (long) layout.outer() * layout.blocks() * groupSize * layout.inner() : w.length;
    long codeBytes = (padded * storageBits + 7) / 8;
    long params = q.scales().length;
    assertThat(report.bytesAfter()).isGreaterThanOrEqualTo(codeBytes + 4 * params)
        .isLessThanOrEqualTo(codeBytes + (symmetric ? 4 : 8) * params + 200);
    assertThat(report.bitsPerWeight()).isEqualTo(8.0 * report.bytesAfter() / w.length);
    long fileShrink = Files.size(originalFile) - Files.size(quantizedFile);
    assertThat(fileShrink).as("file bytes saved").isGreaterThanOrEqualTo(4L * w.length - report.bytesAfter() - 1000);
    assertThat(report.bits()).isEqualTo(grid.bits());
    assertThat(report.granularity()).isEqualTo(granularity.name());
    assertThat(report.groupSize()).isEqualTo(groupSize);
    assertThat(report.range()).isEqualTo(grid.bits() == 1 && grid.scheme() == Scheme.INTEGER ? "closed-form" : "minmax");
    assertThat(report.encoding()).isEqualTo(expectedEncoding(opset, op, grid, granularity));
    assertThat(quantized.getOpsetImport(0).getVersion()).isEqualTo(opset);
    System.out.printf("opset %d %s %s sym=%s %s%s: %s, %.2f bits/weight, worst |err|/bound %.3f, SQNR %.1f dB%n",
        opset, op, grid, symmetric, granularity, groupSize == null ? "" : " " + groupSize, report.encoding(),
        report.bitsPerWeight(), worst, report.sqnrDb());
  }

  static String expectedEncoding(long opset, Op op, Grid grid, Granularity g) {
    if (grid.scheme() == Scheme.TERNARY || grid.bits() < 4) {
      return "packed+unpack";
    }
    if (grid.bits() == 4 && g == Granularity.GROUP && op == Op.MATMUL && opset < 21) {
      return "MatMulNBits";
    }
    if (grid.bits() == 4) {
      return opset >= 21 ? "DequantizeLinear" : "packed+unpack";
    }
    return g == Granularity.GROUP && opset < 21 ? "packed+unpack" : "DequantizeLinear";
  }

  /** Parameter set of element e (the test's own reading of the layout contract). */
  static int paramOf(QuantLayout l, int e) {
    return switch (l.mode()) {
      case TENSOR -> 0;
      case CHANNEL -> (e / l.inner()) % l.extent();
      case GROUP -> ((e / (l.inner() * l.extent())) * l.blocks() + ((e / l.inner()) % l.extent()) / l.groupSize())
          * l.inner() + e % l.inner();
    };
  }
}
