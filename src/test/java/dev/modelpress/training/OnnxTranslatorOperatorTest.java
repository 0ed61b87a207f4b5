package dev.modelpress.training;

import static dev.modelpress.testing.OnnxGraphBuilder.floatAttr;
import static dev.modelpress.testing.OnnxGraphBuilder.intAttr;
import static dev.modelpress.testing.OnnxGraphBuilder.intsAttr;
import static dev.modelpress.testing.OnnxGraphBuilder.randomFloats;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Each operator family, translated from a small ONNX graph, computes in SameDiff what ONNX Runtime
 * computes on the same inputs (before any training): within 1e-4, absolute for values up to 1 and
 * relative above. Inputs have a symbolic batch dimension fed with 3 samples, so nothing relies on a
 * fixed batch size.
 */
class OnnxTranslatorOperatorTest {

  private static final double TOLERANCE = 1e-4;
  private static final TensorProto.DataType FLOAT = TensorProto.DataType.FLOAT;

  @TempDir
  Path dir;

  @Test
  void gemmWithTransposedOperandsAlphaBetaAndBroadcastBiasMatchesOnnxRuntime() {
    ModelProto model = OnnxGraphBuilder.opset(13)
        .input("x", 4, 3)
        .initializer("W", randomFloats(1, 24, 1f), 6, 4)
        .initializer("C", randomFloats(2, 6, 1f), 6)
        .initializer("W2", randomFloats(3, 12, 1f), 6, 2)
        .initializer("C2", randomFloats(4, 6, 1f), 3, 2)
        // y = 0.7 * x^T W^T + 1.3 * C: [3, 6]
        .node("Gemm", List.of("x", "W", "C"), List.of("y"),
            intAttr("transA", 1), intAttr("transB", 1), floatAttr("alpha", 0.7f), floatAttr("beta", 1.3f))
        .node("Gemm", List.of("y", "W2", "C2"), List.of("z"))
        .node("Gemm", List.of("z", "W2"), List.of("noBias"), intAttr("transB", 1))
        .output("y").output("z").output("noBias")
        .build();

    assertAgrees("Gemm", model, Map.of("x", random(10, 4, 3)));
  }

  @Test
  void batchedMatMulOfThreeDByTwoDThreeDByThreeDAndByAVectorMatchesOnnxRuntime() {
    ModelProto model = OnnxGraphBuilder.opset(13)
        .inputSymbolic("x", FLOAT, "batch", 5, 4)
        .initializer("W", randomFloats(1, 12, 1f), 4, 3)
        .initializer("v", randomFloats(2, 3, 1f), 3)
        .matMul("x", "W", "y")                                          // [b, 5, 3]
        .node("Transpose", List.of("y"), List.of("yT"), intsAttr("perm", 0, 2, 1))
        .matMul("y", "yT", "gram")                                      // [b, 5, 5]
        .matMul("y", "v", "projected")                                  // [b, 5]
        .output("y").output("gram").output("projected")
        .build();

    assertAgrees("MatMul", model, Map.of("x", random(11, 3, 5, 4)));
  }

  @Test
  void fourDimensionalAttentionStyleMatMulMatchesOnnxRuntime() {
    ModelProto model = OnnxGraphBuilder.opset(13)
        .inputSymbolic("q", FLOAT, "batch", 2, 5, 4)
        .inputSymbolic("k", FLOAT, "batch", 2, 4, 5)
        .matMul("q", "k", "scores")
        .output("scores")
        .build();

    assertAgrees("MatMul 4-D", model, Map.of("q", random(12, 3, 2, 5, 4), "k", random(13, 3, 2, 4, 5)));
  }

  @Test
  void convolutionsWithPadsStridesDilationsGroupsAndDepthwiseMatchOnnxRuntime() {
    ModelProto model = OnnxGraphBuilder.opset(13)
        .inputSymbolic("x", FLOAT, "batch", 2, 9, 9)
        .initializer("W1", randomFloats(1, 4 * 2 * 9, 0.5f), 4, 2, 3, 3)
        .initializer("B1", randomFloats(2, 4, 0.5f), 4)
        .initializer("W2", randomFloats(3, 8 * 9, 0.5f), 8, 1, 3, 3)
        .initializer("B2", randomFloats(4, 8, 0.5f), 8)
        .initializer("W3", randomFloats(5, 6 * 4 * 4, 0.5f), 6, 4, 2, 2)
        .initializer("W4", randomFloats(6, 3 * 2 * 9, 0.5f), 3, 2, 3, 3)
        // 3x3 stride 2 pad 1: [b, 4, 5, 5]
        .node("Conv", List.of("x", "W1", "B1"), List.of("c1"),
            intsAttr("pads", 1, 1, 1, 1), intsAttr("strides", 2, 2), intsAttr("kernel_shape", 3, 3))
        // depthwise, multiplier 2: [b, 8, 5, 5]
        .node("Conv", List.of("c1", "W2", "B2"), List.of("c2"), intAttr("group", 4), intsAttr("pads", 1, 1, 1, 1))
        // grouped (2 groups of 4 -> 3), 2x2, asymmetric pads, no bias: [b, 6, 5, 5]
        .node("Conv", List.of("c2", "W3"), List.of("c3"), intAttr("group", 2), intsAttr("pads", 0, 1, 1, 0))
        // dilation 2, pads 2: [b, 3, 9, 9]
        .node("Conv", List.of("x", "W4"), List.of("c4"), intsAttr("dilations", 2, 2), intsAttr("pads", 2, 2, 2, 2))
        // SAME_UPPER with stride 2 on 9x9: total pad 2 -> [b, 3, 5, 5]
        .node("Conv", List.of("x", "W4"), List.of("c5"), intsAttr("strides", 2, 2),
            stringAttr("auto_pad", "SAME_UPPER"))
        // SAME_LOWER, stride 1, 2x2 kernel: the single pad goes first
        .node("Conv", List.of("c1", "W3"), List.of("c6"), stringAttr("auto_pad", "SAME_LOWER"), intAttr("group", 1))
        .output("c1").output("c2").output("c3").output("c4").output("c5").output("c6")
        .build();

    assertAgrees("Conv", model, Map.of("x", random(20, 3, 2, 9, 9)));
  }

  @Test
  void batchNormalizationWithRunningStatisticsMatchesOnnxRuntimeAndTrainsOnlyScaleAndBias() {
    float[] variance = randomFloats(4, 3, 0.5f);
    for (int i = 0; i < variance.length; i++) {
      variance[i] = Math.abs(variance[i]) + 0.1f;
    }
    ModelProto model = OnnxGraphBuilder.opset(13)
        .inputSymbolic("x", FLOAT, "batch", 3, 4, 4)
        .initializer("scale", randomFloats(1, 3, 2f), 3)
        .initializer("bias", randomFloats(2, 3, 1f), 3)
        .initializer("mean", randomFloats(3, 3, 1f), 3)
        .initializer("var", variance, 3)
        .node("BatchNormalization", List.of("x", "scale", "bias", "mean", "var"), List.of("bn"),
            floatAttr("epsilon", 1e-3f))
        .relu("bn", "y")
        .output("y")
        .build();

    assertThat(OnnxTranslator.defaultTrainable(model)).containsExactlyInAnyOrder("scale", "bias");
    assertAgrees("BatchNormalization", model, Map.of("x", random(21, 3, 3, 4, 4)));
  }

  @Test
  void activationsMatchOnnxRuntime() {
    ModelProto model = OnnxGraphBuilder.opset(20).irVersion(9)
        .inputSymbolic("x", FLOAT, "batch", 16)
        .relu("x", "relu")
        .node("LeakyRelu", List.of("x"), List.of("leaky"), floatAttr("alpha", 0.2f))
        .node("Sigmoid", List.of("x"), List.of("sigmoid"))
        .node("Tanh", List.of("x"), List.of("tanh"))
        .node("Gelu", List.of("x"), List.of("gelu"))
        .node("Gelu", List.of("x"), List.of("geluTanh"), stringAttr("approximate", "tanh"))
        .node("Erf", List.of("x"), List.of("erf"))
        .node("Clip", List.of("x", "lo", "hi"), List.of("clip"))
        .initializer("lo", new float[] {-0.5f})
        .initializer("hi", new float[] {1.5f})
        .output("relu").output("leaky").output("sigmoid").output("tanh").output("gelu").output("geluTanh")
        .output("erf").output("clip")
        .build();

    assertAgrees("activations", model, Map.of("x", random(22, 3, 16).muli(4)));
  }

  @Test
  void poolingWithPadsBothCountModesAndGlobalAverageMatchesOnnxRuntime() {
    ModelProto model = OnnxGraphBuilder.opset(13)
        .inputSymbolic("x", FLOAT, "batch", 2, 8, 8)
        .node("MaxPool", List.of("x"), List.of("max"),
            intsAttr("kernel_shape", 3, 3), intsAttr("strides", 2, 2), intsAttr("pads", 1, 1, 1, 1))
        .node("MaxPool", List.of("x"), List.of("maxAsym"), intsAttr("kernel_shape", 2, 2), intsAttr("pads", 0, 0, 1, 1))
        .node("AveragePool", List.of("x"), List.of("avgExclude"),
            intsAttr("kernel_shape", 3, 3), intsAttr("pads", 1, 1, 1, 1))
        .node("AveragePool", List.of("x"), List.of("avgInclude"),
            intsAttr("kernel_shape", 3, 3), intsAttr("pads", 1, 1, 1, 1), intAttr("count_include_pad", 1))
        .node("GlobalAveragePool", List.of("x"), List.of("gap"))
        .node("GlobalMaxPool", List.of("x"), List.of("gmp"))
        .output("max").output("maxAsym").output("avgExclude").output("avgInclude").output("gap").output("gmp")
        .build();

    // Negative inputs: a max pool that pads with zeros instead of ignoring the pads would show.
    assertAgrees("pooling", model, Map.of("x", random(23, 3, 2, 8, 8).subi(0.5)));
  }

  @Test
  void reshapeFlattenTransposeConcatSqueezeAndUnsqueezeMatchOnnxRuntime() {
    ModelProto model = OnnxGraphBuilder.opset(13)
        .inputSymbolic("x", FLOAT, "batch", 2, 3, 4)
        .int64Initializer("shape", new long[] {0, -1, 4}, 3)
        .int64Initializer("axes", new long[] {1, -1}, 2)
        .int64Initializer("squeezeAxes", new long[] {1}, 1)
        .initializer("extra", randomFloats(1, 24, 1f), 1, 6, 4)
        .node("Reshape", List.of("x", "shape"), List.of("r"))                               // [b, 6, 4]
        .node("Transpose", List.of("r"), List.of("t"), intsAttr("perm", 0, 2, 1))             // [b, 4, 6]
        .node("Transpose", List.of("x"), List.of("reversed"))                                 // [4, 3, 2, b]
        .flatten("x", "flat2", 2)                                                             // [2b, 12]
        .flatten("x", "flat0", 0)                                                             // [1, 24b]
        .node("Unsqueeze", List.of("r", "axes"), List.of("u"))                                // [b, 1, 6, 4, 1]
        .node("Squeeze", List.of("u", "squeezeAxes"), List.of("s"))                           // [b, 6, 4, 1]
        .node("Mul", List.of("r", "extra"), List.of("scaled"))                                // [b, 6, 4]
        .node("Concat", List.of("r", "scaled"), List.of("cat"), intAttr("axis", -1))         // [b, 6, 8]
        .output("t").output("reversed").output("flat2").output("flat0").output("s").output("cat")
        .build();

    assertAgrees("shape ops", model, Map.of("x", random(24, 3, 2, 3, 4)));
  }

  @Test
  void exporterShapeArithmeticWithShapeGatherCastSliceAndReduceMeanMatchesOnnxRuntime() {
    // The pattern PyTorch writes for dynamic dims: Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
    ModelProto model = OnnxGraphBuilder.opset(13)
        .inputSymbolic("x", FLOAT, "batch", "seq", 6)
        .inputSymbolic("ids", TensorProto.DataType.INT64, "batch", "seq")
        .initializer("table", randomFloats(1, 10 * 6, 1f), 10, 6)
        .int64Initializer("zero", new long[] {0})
        .int64Initializer("one", new long[] {1})
        .int64Initializer("axis0", new long[] {0}, 1)
        .int64Initializer("heads", new long[] {2, 3}, 2)
        .int64Initializer("starts", new long[] {1}, 1)
        .int64Initializer("ends", new long[] {Long.MAX_VALUE}, 1)
        .int64Initializer("axes", new long[] {2}, 1)
        .int64Initializer("reduce", new long[] {-1}, 1)
        .gather("table", "ids", "embedded")                                                  // [b, s, 6]
        .add("x", "embedded", "h")
        .node("Shape", List.of("h"), List.of("shape"))
        .node("Gather", List.of("shape", "zero"), List.of("b"), intAttr("axis", 0))
        .node("Gather", List.of("shape", "one"), List.of("s"), intAttr("axis", 0))
        .node("Unsqueeze", List.of("b", "axis0"), List.of("b1"))
        .node("Unsqueeze", List.of("s", "axis0"), List.of("s1"))
        .node("Concat", List.of("b1", "s1", "heads"), List.of("target"), intAttr("axis", 0))
        .node("Reshape", List.of("h", "target"), List.of("split"))                            // [b, s, 2, 3]
        .node("Slice", List.of("h", "starts", "ends", "axes"), List.of("tail"))               // [b, s, 5]
        .node("Cast", List.of("ids"), List.of("idsFloat"), intAttr("to", 1))
        .node("ReduceSum", List.of("tail", "reduce"), List.of("sum"), intAttr("keepdims", 0)) // [b, s]
        .node("Add", List.of("sum", "idsFloat"), List.of("mixed"))
        .node("ReduceMean", List.of("split"), List.of("mean"), intsAttr("axes", -1))          // [b, s, 2, 1]
        .output("split").output("tail").output("mixed").output("mean")
        .build();
    INDArray ids = Nd4j.createFromArray(new long[][] {{1, 2, 3, 9}, {0, 0, 5, 4}, {7, 8, 6, 2}});

    assertThat(OnnxTranslator.defaultTrainable(model)).containsExactly("table");
    assertAgrees("Shape/Gather/Slice", model, Map.of("x", random(25, 3, 4, 6), "ids", ids));
  }

  @Test
  void negativeAxesOfFlattenAndShapeCountFromTheBack() {
    ModelProto model = OnnxGraphBuilder.opset(15)
        .inputSymbolic("x", FLOAT, "batch", 2, 3, 4)
        .flatten("x", "flat", -1)                                                             // [6b, 4]
        .node("Shape", List.of("x"), List.of("tail"), intAttr("start", -2))                  // [3, 4]
        .node("Shape", List.of("x"), List.of("middle"), intAttr("start", 1), intAttr("end", -1)) // [2, 3]
        .node("Cast", List.of("tail"), List.of("tailFloat"), intAttr("to", 1))
        .node("Cast", List.of("middle"), List.of("middleFloat"), intAttr("to", 1))
        .output("flat").output("tailFloat").output("middleFloat")
        .build();

    assertAgrees("negative axes", model, Map.of("x", random(30, 3, 2, 3, 4)));
  }

  @Test
  void softmaxFollowsEachOpsetsAxisSemantics() {
    for (int opset : new int[] {11, 13}) {
      // Before opset 13, Softmax(axis=1) on [b, 3, 4] normalises over all 12 values of a sample.
      ModelProto model = OnnxGraphBuilder.opset(opset)
          .inputSymbolic("x", FLOAT, "batch", 3, 4)
          .node("Softmax", List.of("x"), List.of("axis1"), intAttr("axis", 1))
          .node("Softmax", List.of("x"), List.of("last"))
          .node("LogSoftmax", List.of("x"), List.of("log"), intAttr("axis", -1))
          .output("axis1").output("last").output("log")
          .build();

      assertAgrees("Softmax opset " + opset, model, Map.of("x", random(26, 3, 3, 4).muli(3)));
    }
  }

  @Test
  void layerNormalizationMatchesOnnxRuntime() {
    ModelProto model = OnnxGraphBuilder.opset(17)
        .inputSymbolic("x", FLOAT, "batch", 5, 8)
        .initializer("gamma", randomFloats(1, 8, 2f), 8)
        .initializer("beta", randomFloats(2, 8, 1f), 8)
        .node("LayerNormalization", List.of("x", "gamma", "beta"), List.of("y"), floatAttr("epsilon", 1e-5f))
        .node("LayerNormalization", List.of("x", "gamma"), List.of("y2"), intAttr("axis", 1))
        .output("y").output("y2")
        .build();

    assertThat(OnnxTranslator.defaultTrainable(model)).containsExactlyInAnyOrder("gamma", "beta");
    assertAgrees("LayerNormalization", model, Map.of("x", random(27, 3, 5, 8).muli(5).addi(2)));
  }

  @Test
  void elementwiseArithmeticBroadcastsLikeOnnxRuntime() {
    ModelProto model = OnnxGraphBuilder.opset(13)
        .inputSymbolic("x", FLOAT, "batch", 3, 4)
        .initializer("row", randomFloats(1, 4, 1f), 4)
        .initializer("col", new float[] {1.5f, -2f, 3f}, 3, 1)
        .constant("two", new float[] {2f})
        .node("Sub", List.of("x", "row"), List.of("d"))
        .node("Div", List.of("d", "col"), List.of("q"))
        .node("Pow", List.of("q", "two"), List.of("sq"))
        .node("Mul", List.of("sq", "two"), List.of("m"))
        .node("Sqrt", List.of("m"), List.of("root"))
        .node("Dropout", List.of("root"), List.of("dropped"))
        .node("Identity", List.of("dropped"), List.of("y"))
        .output("y").output("q")
        .build();

    assertAgrees("arithmetic", model, Map.of("x", random(28, 3, 3, 4)));
  }

  @Test
  void nodesInReverseOrderTranslateLikeTheSortedGraph() {
    ModelProto sorted = OnnxGraphBuilder.opset(13)
        .inputSymbolic("x", FLOAT, "batch", 6)
        .initializer("W1", randomFloats(1, 48, 1f), 8, 6)
        .initializer("B1", randomFloats(2, 8, 1f), 8)
        .initializer("W2", randomFloats(3, 16, 1f), 2, 8)
        .gemm("x", "W1", "B1", "h", true)
        .relu("h", "a")
        .gemm("a", "W2", null, "y", true)
        .output("y")
        .build();
    ModelProto.Builder reversed = sorted.toBuilder();
    reversed.getGraphBuilder().clearNode();
    for (int i = sorted.getGraph().getNodeCount() - 1; i >= 0; i--) {
      reversed.getGraphBuilder().addNode(sorted.getGraph().getNode(i));
    }

    assertAgrees("reversed", reversed.build(), Map.of("x", random(29, 3, 6)));
  }

  private void assertAgrees(String what, ModelProto model, Map<String, INDArray> feeds) {
    TrainableGraph graph = OnnxTranslator.translate(model);
    OrtAgreement.Result r = OrtAgreement.compare(model, graph, feeds, dir);
    System.out.printf(Locale.ROOT, "%s: %d values, max error %.3g (max abs difference %.3g)%n",
        what, r.elements(), r.maxError(), r.maxAbsDifference());
    assertThat(r.elements()).isPositive();
    assertThat(r.maxError()).as(what).isLessThan(TOLERANCE);
  }

  private static INDArray random(long seed, long... shape) {
    int n = 1;
    for (long d : shape) {
      n *= (int) d;
    }
    return Nd4j.create(randomFloats(seed, n, 1f), shape, 'c').castTo(DataType.FLOAT);
  }

  private static AttributeProto stringAttr(String name, String value) {
    return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.STRING)
        .setS(ByteString.copyFromUtf8(value)).build();
  }
}
