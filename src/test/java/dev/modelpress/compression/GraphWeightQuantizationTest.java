package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TypeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Weights where real models keep them besides main-graph initializers: {@code Constant} nodes,
 * {@code If}/{@code Loop}/{@code Scan} subgraphs (their initializers and Constants, and outer
 * weights read from inside them), shared by several nodes, in graphs whose nodes are not sorted.
 * Every quantized model runs in ONNX Runtime next to the original.
 */
class GraphWeightQuantizationTest {

  static final int K = 64;
  static final int N = 32;

  @TempDir Path dir;

  static float[] weights(long seed) {
    return OnnxGraphBuilder.randomFloats(seed, K * N, 0.5f);
  }

  static float[] input(long seed, int rows) {
    return OnnxGraphBuilder.randomFloats(seed, rows * K, 1f);
  }

  // ---- Constant nodes ---------------------------------------------------------------------

  @Test
  void constantNodeWeightBecomesInt8CodesAndRunsCloseToTheOriginal() throws Exception {
    ModelProto original = OnnxGraphBuilder.opset(13).input("x", 2, K)
        .constant("W", weights(1), K, N)
        .matMul("x", "W", "y").output("y").build();
    assertThat(OnnxModels.summarize(original).tensors())
        .extracting(TensorInfo::name, TensorInfo::location, TensorInfo::consumers)
        .containsExactly(org.assertj.core.groups.Tuple.tuple("W", "Constant node", List.of("MatMul:1")));

    PipelineResult r = OnnxPipeline.run(original, List.of(QuantizeSpec.int8(true, Granularity.CHANNEL)), Progress.NONE);

    assertThat(r.steps().get(0).tensors()).extracting(TensorReport::name).containsExactly("W");
    assertThat(floatWeights(r.model())).isEmpty();
    assertThat(int8Codes(r.model())).containsExactly("W_quantized [64, 32]");
    assertThat(Models.opTypes(r.model())).containsExactly("DequantizeLinear", "MatMul");
    assertRunsClose(original, r.model(), Map.of("x", new OrtRunner.Input(input(2, 2), 2, K)), 0.01);
    assertSmaller(original, r.model(), 0.35);
  }

  @Test
  void constantWeightReadOnlyByMatMulsBecomesMatMulNBitsBelowOpset21() throws Exception {
    ModelProto original = OnnxGraphBuilder.opset(17).input("x", 2, K)
        .constant("W", weights(3), K, N)
        .matMul("x", "W", "y").output("y").build();
    QuantizeSpec int4 = QuantizeSpec.integer(4, true, Granularity.GROUP, 32, QuantizeSpec.RangeMethod.MINMAX);

    PipelineResult r = OnnxPipeline.run(original, List.of(int4), Progress.NONE);

    assertThat(r.steps().get(0).tensors().get(0).encoding()).isEqualTo("MatMulNBits");
    assertThat(Models.opTypes(r.model())).containsExactly("MatMulNBits");
    assertThat(floatWeights(r.model())).isEmpty();
    assertRunsClose(original, r.model(), Map.of("x", new OrtRunner.Input(input(4, 2), 2, K)), 0.15);
    assertSmaller(original, r.model(), 0.20);
  }

  // ---- If ---------------------------------------------------------------------------------

  /** y = If(sum(c) > 0) then x · Wt (a then-branch initializer) else x · We (a Constant in the else branch). */
  static ModelProto ifModel() {
    GraphProto thenBranch = GraphProto.newBuilder().setName("then")
        .addInitializer(OnnxTensors.floatTensor("Wt", weights(11), K, N))
        .addNode(node("MatMul", List.of("x", "Wt"), List.of("yt")))
        .addOutput(floatValue("yt"))
        .build();
    GraphProto elseBranch = GraphProto.newBuilder().setName("else")
        .addNode(constantNode("We", weights(12), K, N))
        .addNode(node("MatMul", List.of("x", "We"), List.of("ye")))
        .addOutput(floatValue("ye"))
        .build();
    ModelProto m = OnnxGraphBuilder.opset(13).input("x", 2, K).input("c", 1)
        .initializer("zero", new float[] {0f}, 1)
        .node("Greater", List.of("c", "zero"), List.of("cond"))
        .output("y").build();
    GraphProto.Builder g = m.getGraph().toBuilder()
        .addNode(NodeProto.newBuilder().setName("branch").setOpType("If").addInput("cond").addOutput("y")
            .addAttribute(graphAttr("then_branch", thenBranch)).addAttribute(graphAttr("else_branch", elseBranch)));
    return m.toBuilder().setGraph(g).build();
  }

  @Test
  void ifBranchInitializerAndConstantAreCataloguedWithTheirScope() {
    List<TensorInfo> tensors = OnnxModels.summarize(ifModel()).tensors();
    assertThat(tensors).extracting(TensorInfo::name)
        .containsExactly("zero", "branch.then_branch/Wt", "branch.else_branch/We");
    assertThat(tensors.get(1).location()).isEqualTo("initializer of subgraph branch.then_branch");
    assertThat(tensors.get(2).location()).isEqualTo("Constant node in subgraph branch.else_branch");
    assertThat(tensors.get(1).consumers()).containsExactly("MatMul:1");
    assertThat(tensors.get(0).mainGraphInitializer()).isTrue();
  }

  @Test
  void ifBranchWeightsAreQuantizedInsideTheirBranchesAndBothBranchesRunClose() throws Exception {
    ModelProto original = ifModel();

    PipelineResult r = OnnxPipeline.run(original, List.of(QuantizeSpec.int8(true, Granularity.CHANNEL)), Progress.NONE);

    assertThat(r.steps().get(0).tensors()).extracting(TensorReport::name)
        .containsExactly("branch.then_branch/Wt", "branch.else_branch/We");
    assertThat(floatWeights(r.model())).isEmpty();
    assertThat(int8Codes(r.model())).containsExactlyInAnyOrder("Wt_quantized [64, 32]", "We_quantized [64, 32]");
    // The main graph is as it was; each branch decodes its own weight first.
    assertThat(Models.opTypes(r.model())).containsExactly("Greater", "If");
    GraphProto then = subgraph(r.model(), "If", "then_branch");
    assertThat(then.getNodeList()).extracting(NodeProto::getOpType).containsExactly("DequantizeLinear", "MatMul");
    GraphProto otherwise = subgraph(r.model(), "If", "else_branch");
    assertThat(otherwise.getNodeList()).extracting(NodeProto::getOpType).containsExactly("DequantizeLinear", "MatMul");
    for (float c : new float[] {1f, -1f}) {
      assertRunsClose(original, r.model(), Map.of("x", new OrtRunner.Input(input(5, 2), 2, K),
          "c", new OrtRunner.Input(new float[] {c}, 1)), 0.01);
    }
    assertSmaller(original, r.model(), 0.35);
  }

  // ---- Loop -------------------------------------------------------------------------------

  /**
   * Three iterations of h = tanh(h · Wb + h · Wo · 0.5): Wb is the body's initializer, Wo a main-graph
   * initializer the body reads from the outer scope (square, [K, K]).
   */
  static ModelProto loopModel() {
    GraphProto body = GraphProto.newBuilder().setName("body")
        .addInput(scalar("i", TensorProto.DataType.INT64))
        .addInput(scalar("cond_in", TensorProto.DataType.BOOL))
        .addInput(floatValue("h"))
        .addInitializer(OnnxTensors.floatTensor("Wb", OnnxGraphBuilder.randomFloats(21, K * K, 0.15f), K, K))
        .addInitializer(OnnxTensors.floatTensor("half", new float[] {0.5f}))
        .addNode(node("Identity", List.of("cond_in"), List.of("cond_out")))
        .addNode(node("MatMul", List.of("h", "Wb"), List.of("a")))
        .addNode(node("MatMul", List.of("h", "Wo"), List.of("b")))
        .addNode(node("Mul", List.of("b", "half"), List.of("b2")))
        .addNode(node("Add", List.of("a", "b2"), List.of("s")))
        .addNode(node("Tanh", List.of("s"), List.of("h_out")))
        .addOutput(value("cond_out", TensorProto.DataType.BOOL))
        .addOutput(floatValue("h_out"))
        .build();
    ModelProto m = OnnxGraphBuilder.opset(13).input("x", 2, K)
        .initializer("Wo", OnnxGraphBuilder.randomFloats(22, K * K, 0.15f), K, K)
        .int64Initializer("trips", new long[] {3})
        .output("y").build();
    GraphProto.Builder g = m.getGraph().toBuilder()
        .addNode(NodeProto.newBuilder().setName("loop").setOpType("Loop").addInput("trips").addInput("").addInput("x")
            .addOutput("y").addAttribute(graphAttr("body", body)));
    return m.toBuilder().setGraph(g).build();
  }

  @Test
  void loopBodyWeightAndOuterWeightReadInsideTheBodyAreBothQuantized() throws Exception {
    ModelProto original = loopModel();
    List<TensorInfo> tensors = OnnxModels.summarize(original).tensors();
    // The outer weight is a MatMul weight because the body's MatMul reads it.
    assertThat(tensors.stream().filter(t -> t.name().equals("Wo")).findFirst().orElseThrow().consumers())
        .containsExactly("MatMul:1");

    PipelineResult r = OnnxPipeline.run(original, List.of(QuantizeSpec.int8(true, Granularity.CHANNEL)), Progress.NONE);

    assertThat(r.steps().get(0).tensors()).extracting(TensorReport::name).containsExactly("Wo", "loop.body/Wb");
    assertThat(floatWeights(r.model())).isEmpty();
    assertThat(int8Codes(r.model())).containsExactlyInAnyOrder("Wo_quantized [64, 64]", "Wb_quantized [64, 64]");
    // Per channel along the MatMul's output axis (1), learnt from the body's consumer.
    NodeProto outer = r.model().getGraph().getNode(0);
    assertThat(outer.getOpType()).isEqualTo("DequantizeLinear");
    assertThat(outer.getAttribute(0).getI()).isEqualTo(1);
    // Three iterations through two int8 matrices each: errors of ~0.5% per layer add up.
    assertRunsClose(original, r.model(), Map.of("x", new OrtRunner.Input(input(6, 2), 2, K)), 0.02);
    assertSmaller(original, r.model(), 0.35);
  }

  // ---- Scan -------------------------------------------------------------------------------

  /** Scan over the 4 rows of x [4, K]: state s += x_t · Ws (Ws a body initializer); y = final state [N]. */
  static ModelProto scanModel() {
    GraphProto body = GraphProto.newBuilder().setName("scan_body")
        .addInput(floatValue("s"))
        .addInput(floatValue("xt"))
        .addInitializer(OnnxTensors.floatTensor("Ws", weights(31), K, N))
        .addNode(node("MatMul", List.of("xt", "Ws"), List.of("p")))
        .addNode(node("Add", List.of("s", "p"), List.of("s_out")))
        .addOutput(floatValue("s_out"))
        .build();
    ModelProto m = OnnxGraphBuilder.opset(13).input("x", 4, K)
        .initializer("s0", new float[N], N)
        .output("y").build();
    GraphProto.Builder g = m.getGraph().toBuilder()
        .addNode(NodeProto.newBuilder().setName("scan").setOpType("Scan").addInput("s0").addInput("x")
            .addOutput("y").addAttribute(graphAttr("body", body))
            .addAttribute(OnnxGraphBuilder.intAttr("num_scan_inputs", 1)));
    return m.toBuilder().setGraph(g).build();
  }

  @Test
  void scanBodyWeightIsQuantizedAndTheScanRunsClose() throws Exception {
    ModelProto original = scanModel();

    PipelineResult r = OnnxPipeline.run(original, List.of(QuantizeSpec.int8(false, Granularity.CHANNEL)), Progress.NONE);

    assertThat(r.steps().get(0).tensors()).extracting(TensorReport::name).containsExactly("scan.body/Ws");
    assertThat(floatWeights(r.model())).isEmpty();
    assertThat(int8Codes(r.model())).containsExactly("Ws_quantized [64, 32]");
    assertRunsClose(original, r.model(), Map.of("x", new OrtRunner.Input(input(7, 4), 4, K)), 0.01);
    assertSmaller(original, r.model(), 0.35);
  }

  // ---- shared weights, unsorted nodes -----------------------------------------------------

  @Test
  void weightSharedByThreeNodesInAnUnsortedGraphIsDecodedOnceAndFeedsThemAll() throws Exception {
    // y = (x · W) · Wsq + Gemm(relu(x · W), Wsq): W feeds two MatMuls, Wsq a MatMul and a Gemm.
    ModelProto sorted = OnnxGraphBuilder.opset(13).input("x", 2, K)
        .initializer("W", weights(41), K, N)
        .initializer("Wsq", OnnxGraphBuilder.randomFloats(42, N * N, 0.2f), N, N)
        .matMul("x", "W", "a")
        .matMul("a", "Wsq", "b")
        .matMul("x", "W", "c")
        .relu("c", "d")
        .gemm("d", "Wsq", null, "e", false)
        .add("b", "e", "y")
        .output("y").build();
    List<NodeProto> reversed = new ArrayList<>(sorted.getGraph().getNodeList());
    Collections.reverse(reversed);
    ModelProto original = sorted.toBuilder()
        .setGraph(sorted.getGraph().toBuilder().clearNode().addAllNode(reversed)).build();

    PipelineResult r = OnnxPipeline.run(original, List.of(QuantizeSpec.int8(true, Granularity.CHANNEL)), Progress.NONE);

    assertThat(r.steps().get(0).tensors()).extracting(TensorReport::name).containsExactly("W", "Wsq");
    assertThat(int8Codes(r.model())).containsExactlyInAnyOrder("W_quantized [64, 32]", "Wsq_quantized [32, 32]");
    assertThat(Models.opTypes(r.model()).stream().filter("DequantizeLinear"::equals).count()).isEqualTo(2);
    assertThat(floatWeights(r.model())).isEmpty();
    assertRunsClose(original, r.model(), Map.of("x", new OrtRunner.Input(input(8, 2), 2, K)), 0.01);
  }

  @Test
  void int4WeightSharedByTwoMatMulsInAnUnsortedGraphUsesMatMulNBitsForBoth() throws Exception {
    ModelProto sorted = OnnxGraphBuilder.opset(17).input("x", 2, K).input("z", 2, K)
        .initializer("W", weights(51), K, N)
        .matMul("x", "W", "a")
        .matMul("z", "W", "b")
        .add("a", "b", "y")
        .output("y").build();
    List<NodeProto> reversed = new ArrayList<>(sorted.getGraph().getNodeList());
    Collections.reverse(reversed);
    ModelProto original = sorted.toBuilder()
        .setGraph(sorted.getGraph().toBuilder().clearNode().addAllNode(reversed)).build();
    QuantizeSpec int4 = QuantizeSpec.integer(4, true, Granularity.GROUP, 32, QuantizeSpec.RangeMethod.MINMAX);

    PipelineResult r = OnnxPipeline.run(original, List.of(int4), Progress.NONE);

    assertThat(Models.opTypes(r.model())).containsExactly("Add", "MatMulNBits", "MatMulNBits");
    assertRunsClose(original, r.model(), Map.of("x", new OrtRunner.Input(input(9, 2), 2, K),
        "z", new OrtRunner.Input(input(10, 2), 2, K)), 0.15);
  }

  // ---- what cannot be rewritten fails, naming the tensor -----------------------------------

  @Test
  void subgraphInitializerThatIsAlsoASubgraphInputFailsNamingIt() {
    ModelProto m = loopModel();
    GraphProto body = m.getGraph().getNode(0).getAttribute(0).getG();
    // The body's state input is named like its initializer: an initializer as the default of a
    // positional input, which a decoder cannot replace.
    GraphProto hostile = body.toBuilder()
        .setInitializer(0, OnnxTensors.floatTensor("h", OnnxGraphBuilder.randomFloats(1, 2 * K, 0.1f), 2, K))
        .addNode(node("MatMul", List.of("h", "Wb2"), List.of("unused")))
        .addInitializer(OnnxTensors.floatTensor("Wb2", weights(2), K, N))
        .build();
    ModelProto model = m.toBuilder().setGraph(m.getGraph().toBuilder().setNode(0, m.getGraph().getNode(0).toBuilder()
        .setAttribute(0, graphAttr("body", hostile)))).build();
    QuantizeSpec all = QuantizeSpec.int8(true, Granularity.CHANNEL).selecting(List.of(".*/h", ".*/Wb2"), List.of());

    assertThatThrownBy(() -> OnnxPipeline.run(model, List.of(all), Progress.NONE))
        .isInstanceOf(CompressionException.class)
        .hasMessageContaining("tensor 'loop.body/h' is both an initializer and an input of subgraph loop.body");
  }

  @Test
  void pruneStepDoesNotSeeSubgraphWeightsAndSaysSoAtSubmit() {
    PruneSpec prune = new PruneSpec(PruneSpec.MAGNITUDE, 0.5, null, PruneSpec.Scope.LAYER, List.of("branch.*"), List.of());
    List<Violation> v = SpecValidator.validate(List.of(prune), OnnxModels.summarize(ifModel()));
    assertThat(v).extracting(Violation::field).contains("steps[0].include[0]");
  }

  // ---- helpers -----------------------------------------------------------------------------

  private void assertRunsClose(ModelProto original, ModelProto quantized, Map<String, OrtRunner.Input> inputs,
      double relative) throws Exception {
    Path a = OnnxGraphBuilder.write(original, dir);
    Path b = OnnxGraphBuilder.write(quantized, dir);
    float[] expected;
    float[] actual;
    try (OrtRunner ra = new OrtRunner(a); OrtRunner rb = new OrtRunner(b)) {
      expected = ra.run("y", inputs);
      actual = rb.run("y", inputs);
    }
    assertThat(actual).hasSameSizeAs(expected);
    double maxAbs = 0;
    double maxErr = 0;
    for (int i = 0; i < expected.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
      maxErr = Math.max(maxErr, Math.abs(expected[i] - actual[i]));
    }
    assertThat(maxAbs).isGreaterThan(0.1);
    // Changed (the weights really are codes) but within the scheme's error.
    assertThat(maxErr).isGreaterThan(0).isLessThan(relative * maxAbs);
  }

  private void assertSmaller(ModelProto original, ModelProto quantized, double ratio) throws Exception {
    Path a = OnnxGraphBuilder.write(original, dir);
    Path b = OnnxGraphBuilder.write(quantized, dir);
    assertThat((double) Files.size(b)).isLessThan(ratio * Files.size(a));
  }

  /** FLOAT tensors of 256 or more elements anywhere in the model (initializers and Constant values). */
  static List<String> floatWeights(ModelProto m) {
    List<String> found = new ArrayList<>();
    visit(m.getGraph(), t -> {
      if (t.getDataType() == TensorProto.DataType.FLOAT_VALUE && OnnxTensors.elementCount(t.getDimsList()) >= 256) {
        found.add(t.getName());
      }
    });
    return found;
  }

  /** INT8 matrices anywhere in the model (codes, not zero points), as {@code name dims}. */
  static List<String> int8Codes(ModelProto m) {
    List<String> found = new ArrayList<>();
    visit(m.getGraph(), t -> {
      if (t.getDataType() == TensorProto.DataType.INT8_VALUE && t.getDimsCount() >= 2) {
        found.add(t.getName() + " " + t.getDimsList());
      }
    });
    return found;
  }

  private static void visit(GraphProto g, Consumer<TensorProto> each) {
    g.getInitializerList().forEach(each);
    for (NodeProto n : g.getNodeList()) {
      for (AttributeProto a : n.getAttributeList()) {
        if (a.hasT()) {
          each.accept(a.getT());
        }
        if (a.hasG()) {
          visit(a.getG(), each);
        }
        a.getGraphsList().forEach(sub -> visit(sub, each));
      }
    }
  }

  private static GraphProto subgraph(ModelProto m, String op, String attribute) {
    for (NodeProto n : m.getGraph().getNodeList()) {
      if (n.getOpType().equals(op)) {
        for (AttributeProto a : n.getAttributeList()) {
          if (a.getName().equals(attribute)) {
            return a.getG();
          }
        }
      }
    }
    throw new AssertionError("no " + op + "." + attribute);
  }

  private static NodeProto node(String op, List<String> in, List<String> out) {
    return NodeProto.newBuilder().setName(op + "_" + out.get(0)).setOpType(op).addAllInput(in).addAllOutput(out).build();
  }

  private static NodeProto constantNode(String out, float[] values, long... dims) {
    return NodeProto.newBuilder().setName("const_" + out).setOpType("Constant").addOutput(out)
        .addAttribute(AttributeProto.newBuilder().setName("value").setType(AttributeProto.AttributeType.TENSOR)
            .setT(OnnxTensors.floatTensor(out, values, dims)))
        .build();
  }

  private static AttributeProto graphAttr(String name, GraphProto g) {
    return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.GRAPH).setG(g).build();
  }

  private static ValueInfoProto floatValue(String name) {
    return value(name, TensorProto.DataType.FLOAT);
  }

  private static ValueInfoProto scalar(String name, TensorProto.DataType type) {
    return ValueInfoProto.newBuilder().setName(name)
        .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(type.getNumber())
            .setShape(dev.modelpress.model.onnx.proto.OnnxProto.TensorShapeProto.newBuilder())))
        .build();
  }

  private static ValueInfoProto value(String name, TensorProto.DataType type) {
    return ValueInfoProto.newBuilder().setName(name)
        .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(type.getNumber())))
        .build();
  }
}
