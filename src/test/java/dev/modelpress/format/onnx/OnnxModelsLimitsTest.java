package dev.modelpress.format.onnx;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.FormatException;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Structural bounds on hostile graphs: subgraph nesting depth and total node count. */
class OnnxModelsLimitsTest {

  @TempDir Path dir;

  /** A model whose main graph holds one If node nesting {@code depth - 1} more levels of If. */
  private static ModelProto nestedIfs(int depth) {
    GraphProto inner = GraphProto.newBuilder().setName("leaf")
        .addNode(NodeProto.newBuilder().setOpType("Identity").addInput("x").addOutput("y"))
        .build();
    for (int level = depth - 1; level >= 1; level--) {
      AttributeProto branch = AttributeProto.newBuilder().setName("then_branch")
          .setType(AttributeProto.AttributeType.GRAPH).setG(inner).build();
      inner = GraphProto.newBuilder().setName("level" + level)
          .addNode(NodeProto.newBuilder().setOpType("If").addInput("c").addOutput("y")
              .setName("if" + level).addAttribute(branch))
          .build();
    }
    return OnnxGraphBuilder.opset(13).input("x", 1).relu("x", "y").output("y").build().toBuilder()
        .setGraph(inner)
        .build();
  }

  private static ModelProto manyNodes(int n) {
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(13).input("x0", 1);
    for (int i = 0; i < n; i++) {
      b.relu("x" + i, "x" + (i + 1));
    }
    return b.output("x" + n).build();
  }

  @Test
  void acceptsSubgraphsNestedUpToTheDepthLimit() throws Exception {
    Path file = OnnxGraphBuilder.write(nestedIfs(4), dir);
    ModelProto m = OnnxModels.read(file, new OnnxModels.Limits(4, 100));
    assertThat(m.getGraph().getNode(0).getAttribute(0).getG().getNode(0).getOpType()).isEqualTo("If");
  }

  @Test
  void rejectsSubgraphsNestedOneLevelPastTheLimitNamingTheNode() {
    Path file = OnnxGraphBuilder.write(nestedIfs(5), dir);
    assertThatThrownBy(() -> OnnxModels.read(file, new OnnxModels.Limits(4, 100)))
        .isInstanceOf(FormatException.class)
        .hasMessage("subgraph attribute 'then_branch' of node 'if4' nests subgraphs 5 levels deep, "
            + "more than the limit of 4");
  }

  @Test
  void defaultLimitRejectsDeepNestingThatProtobufStillParses() {
    // 17 levels = 51 message levels: within protobuf's recursion limit of 100, over our default of 16.
    Path file = OnnxGraphBuilder.write(nestedIfs(17), dir);
    assertThatThrownBy(() -> OnnxModels.read(file))
        .isInstanceOf(FormatException.class)
        .hasMessageContaining("17 levels deep, more than the limit of 16");
  }

  @Test
  void countsNodesOfSubgraphsTowardsTheNodeLimit() throws Exception {
    // nestedIfs(3): 3 nodes in all, one per level.
    Path file = OnnxGraphBuilder.write(nestedIfs(3), dir);
    assertThat(OnnxModels.read(file, new OnnxModels.Limits(16, 3)).getGraph().getNodeCount()).isEqualTo(1);
    assertThatThrownBy(() -> OnnxModels.read(file, new OnnxModels.Limits(16, 2)))
        .isInstanceOf(FormatException.class)
        .hasMessage("the model holds more than 2 nodes (limit reached in subgraph attribute "
            + "'then_branch' of node 'if2')");
  }

  @Test
  void rejectsAFlatGraphOverTheNodeLimit() throws Exception {
    Path file = OnnxGraphBuilder.write(manyNodes(1_001), dir);
    assertThat(OnnxModels.read(file, new OnnxModels.Limits(16, 1_001)).getGraph().getNodeCount())
        .isEqualTo(1_001);
    assertThatThrownBy(() -> OnnxModels.read(file, new OnnxModels.Limits(16, 1_000)))
        .isInstanceOf(FormatException.class)
        .hasMessage("the model holds more than 1000 nodes (limit reached in the main graph)");
  }

  @Test
  void limitsMustBePositive() {
    assertThatThrownBy(() -> new OnnxModels.Limits(0, 1)).isInstanceOf(IllegalArgumentException.class);
    assertThat(List.of(OnnxModels.Limits.DEFAULT.maxGraphDepth(), OnnxModels.Limits.DEFAULT.maxNodes()))
        .containsExactly(16, 1_000_000);
  }
}
