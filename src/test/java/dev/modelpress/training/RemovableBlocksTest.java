package dev.modelpress.training;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Finding and removing whole layers: the real all-MiniLM-L6-v2 encoder (6 transformer layers),
 * the committed Fashion-MNIST CNN (no layer repeats) and small convolutional graphs built here,
 * every result run in ONNX Runtime.
 */
class RemovableBlocksTest {

  /** Weights of one MiniLM layer: Q, K, V, attention output (384x384 + 384 each), FFN 384x1536 + 1536 and 1536x384 + 384, 2 LayerNorms. */
  static final long MINILM_LAYER_PARAMETERS = 4 * (384 * 384 + 384) + 384 * 1536 + 1536 + 1536 * 384 + 384 + 2 * 2 * 384;

  static ModelProto miniLm;
  static RemovableBlocks.Analysis miniLmBlocks;

  @TempDir Path dir;

  @BeforeAll
  static void analyse() throws Exception {
    miniLm = OnnxModels.read(MiniLm.modelFile());
    long started = System.nanoTime();
    miniLmBlocks = RemovableBlocks.find(miniLm);
    System.out.printf("MiniLM analysed in %.2f s%n", (System.nanoTime() - started) / 1e9);
  }

  @Test
  void miniLmsSixEncoderLayersAreItsRemovableBlocks() {
    List<RemovableBlocks.Block> blocks = miniLmBlocks.blocks();
    blocks.forEach(b -> System.out.println(b.index() + ": " + b.input() + " -> " + b.output() + " " + b.shape()
        + " nodes " + b.nodes().size() + " parameters " + b.parameters()));
    assertThat(miniLmBlocks.reason()).isNull();
    assertThat(blocks).hasSize(6);
    for (int i = 0; i < 6; i++) {
      RemovableBlocks.Block b = blocks.get(i);
      assertThat(b.index()).isEqualTo(i);
      assertThat(b.input()).isEqualTo(i == 0 ? "/embeddings/LayerNorm/Add_1_output_0" : blocks.get(i - 1).output());
      String layer = "/encoder/layer." + i + "/";
      assertThat(b.nodes()).allMatch(n -> n.startsWith(layer), "every node is in " + layer);
      assertThat(b.parameters()).isEqualTo(MINILM_LAYER_PARAMETERS);
      assertThat(b.initializers()).contains("encoder.layer." + i + ".attention.self.query.bias",
          "encoder.layer." + i + ".output.LayerNorm.weight").hasSize(16);
      // Batch 2 and sequence length 3 in the first probe, the 384-wide hidden state.
      assertThat(b.shape()).containsExactly(2L, 3L, 384L);
    }
    assertThat(blocks.get(5).output()).isEqualTo(MiniLm.OUTPUT);
  }

  @Test
  void keepingLayersZeroTwoFourGivesAThreeLayerMiniLmThatRunsWithTheSameInputsAndOutputs() throws Exception {
    ModelProto student = RemovableBlocks.keep(miniLm, miniLmBlocks, List.of(0, 2, 4));

    long teacherParameters = OnnxModels.summarize(miniLm).parameterCount();
    long studentParameters = OnnxModels.summarize(student).parameterCount();
    assertThat(initializerElements(miniLm) - initializerElements(student)).isEqualTo(3 * MINILM_LAYER_PARAMETERS);
    // The summary also counts Constant nodes: each layer holds 23 elements of them (scalars of the
    // LayerNorms, GELU and attention scale, pieces of the reshape targets), which go with it.
    assertThat(teacherParameters - studentParameters).isEqualTo(3 * (MINILM_LAYER_PARAMETERS + 23));
    assertThat(names(student.getGraph().getInputList())).isEqualTo(names(miniLm.getGraph().getInputList()));
    assertThat(names(student.getGraph().getOutputList())).containsExactly(MiniLm.OUTPUT);
    Set<String> initializers = new HashSet<>();
    student.getGraph().getInitializerList().forEach(t -> initializers.add(t.getName()));
    for (int layer = 0; layer < 6; layer++) {
      assertThat(initializers.contains("encoder.layer." + layer + ".output.LayerNorm.bias")).as("layer %d", layer)
          .isEqualTo(layer % 2 == 0);
    }
    // Layer 2 now reads layer 0's output, layer 4 layer 2's, and the graph output is layer 4's.
    assertThat(node(student, "/encoder/layer.2/attention/self/query/MatMul").getInput(0))
        .isEqualTo(miniLmBlocks.blocks().get(0).output());
    assertThat(node(student, "/encoder/layer.4/attention/self/key/MatMul").getInput(0))
        .isEqualTo(miniLmBlocks.blocks().get(2).output());
    NodeProto identity = student.getGraph().getNodeList().stream()
        .filter(n -> n.getOutputList().contains(MiniLm.OUTPUT)).findFirst().orElseThrow();
    assertThat(identity.getOpType()).isEqualTo("Identity");
    assertThat(identity.getInput(0)).isEqualTo(miniLmBlocks.blocks().get(4).output());
    assertThat(student.getGraph().getNodeCount()).isEqualTo(miniLm.getGraph().getNodeCount() - 3 * 101 + 1);

    var inputs = MiniLm.encode(MiniLm.sentences(), 64);
    float[][] teacher = MiniLm.sentenceEmbeddings(MiniLm.modelFile(), inputs);
    Path file = OnnxGraphBuilder.write(student, dir);
    float[][] derived = MiniLm.sentenceEmbeddings(file, inputs);
    double sum = 0;
    double min = 1;
    for (int i = 0; i < teacher.length; i++) {
      double c = MiniLm.cosine(teacher[i], derived[i]);
      sum += c;
      min = Math.min(min, c);
    }
    double mean = sum / teacher.length;
    System.out.printf("3 of 6 layers kept (0, 2, 4), untrained: %d -> %d parameters, sentence-embedding cosine to the "
        + "teacher mean %.4f, min %.4f over %d sentences%n", teacherParameters, studentParameters, mean, min,
        teacher.length);
    assertThat(mean).isBetween(0.3, 0.5);
  }

  @Test
  void removingLayersThenChannelsGivesAStudentThatStillRuns() throws Exception {
    ModelProto fewer = RemovableBlocks.keep(miniLm, miniLmBlocks, List.of(0, 2, 4));
    var prune = new dev.modelpress.compression.PruneSpec(dev.modelpress.compression.PruneSpec.STRUCTURED, 0.5, null,
        dev.modelpress.compression.PruneSpec.Scope.LAYER, List.of(), List.of(), null, null,
        dev.modelpress.compression.PruneSpec.Criterion.L1, dev.modelpress.compression.PruneSpec.Target.CHANNELS);
    ModelProto narrower = dev.modelpress.compression.OnnxPipeline.run(fewer, List.of(prune),
        dev.modelpress.compression.Progress.NONE).model();

    long fewerParameters = initializerElements(fewer);
    long narrowerParameters = initializerElements(narrower);
    var inputs = MiniLm.encode(MiniLm.sentences().subList(0, 8), 32);
    float[][] embeddings = MiniLm.sentenceEmbeddings(OnnxGraphBuilder.write(narrower, dir), inputs);
    System.out.printf("3 layers, then half the channels: %d -> %d initializer elements%n", fewerParameters,
        narrowerParameters);
    assertThat(narrowerParameters).isLessThan(fewerParameters);
    assertThat(embeddings).hasNumberOfRows(8);
    assertThat(embeddings[0]).hasSize(MiniLm.HIDDEN);
  }

  @Test
  void keepingEveryLayerGivesTheTeachersEmbeddingsExactly() throws Exception {
    ModelProto same = RemovableBlocks.keep(miniLm, miniLmBlocks, List.of(0, 1, 2, 3, 4, 5));
    var inputs = MiniLm.encode(MiniLm.sentences().subList(0, 8), 32);
    float[][] a = MiniLm.sentenceEmbeddings(MiniLm.modelFile(), inputs);
    float[][] b = MiniLm.sentenceEmbeddings(OnnxGraphBuilder.write(same, dir), inputs);
    assertThat(b).isDeepEqualTo(a);
  }

  @Test
  void keepListsThatRemoveNothingUsefulAreRefusedWithTheReason() {
    assertThat(RemovableBlocks.checkKeep(miniLmBlocks, List.of(0, 6)))
        .isEqualTo("index 6 is out of range: the teacher has 6 removable blocks (0 to 5)");
    assertThat(RemovableBlocks.checkKeep(miniLmBlocks, List.of()))
        .isEqualTo("keeps no block: removing all 6 removable blocks leaves no layer to train");
    assertThat(RemovableBlocks.checkKeep(miniLmBlocks, List.of(1, 1))).isEqualTo("index 1 is given twice");
    assertThat(RemovableBlocks.checkKeep(miniLmBlocks, List.of(5, 0))).isNull();
    assertThatThrownBy(() -> RemovableBlocks.keep(miniLm, miniLmBlocks, List.of(-1)))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("index -1 is out of range");
  }

  @Test
  void fashionCnnHasNoRemovableBlocksBecauseEveryLayerChangesTheShape() throws Exception {
    RemovableBlocks.Analysis a = RemovableBlocks.find(OnnxModels.read(Classifier.fashionCnn()));
    System.out.println("fashion CNN: " + a.reason());
    assertThat(a.blocks()).isEmpty();
    assertThat(a.reason()).startsWith("no layer structure repeats back to back between two tensors of the same type "
        + "and shape").contains("shapes along the main path");
    assertThat(RemovableBlocks.checkKeep(a, List.of(0))).startsWith("the teacher has no removable blocks: no layer");
  }

  @Test
  void repeatedConvBlocksThatHalveTheImageAreNotRemovableAndTheReasonSaysSo() {
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(13).inputSymbolic("x", TensorProto.DataType.FLOAT, "N", 4, 8, 8);
    String x = "x";
    for (int i = 0; i < 2; i++) {
      b.initializer("w" + i, OnnxGraphBuilder.randomFloats(i, 4 * 4 * 9, 0.3f), 4, 4, 3, 3)
          .initializer("b" + i, OnnxGraphBuilder.randomFloats(10 + i, 4, 0.1f), 4)
          .conv(x, "w" + i, "b" + i, "c" + i, 1).relu("c" + i, "r" + i).maxPool("r" + i, "p" + i, 2, 2);
      x = "p" + i;
    }
    ModelProto m = b.initializer("fc", OnnxGraphBuilder.randomFloats(7, 16 * 3, 0.3f), 16, 3)
        .flatten(x, "flat", 1).matMul("flat", "fc", "logits").output("logits").build();

    RemovableBlocks.Analysis a = RemovableBlocks.find(m);

    System.out.println("halving conv blocks: " + a.reason());
    assertThat(a.blocks()).isEmpty();
    assertThat(a.reason()).contains("the structure repeated 2 times from 'x' changes the tensor's shape "
        + "([2, 4, 8, 8] to [2, 4, 4, 4])");
  }

  @Test
  void removingTheMiddleOfThreeSameShapeConvBlocksComputesExactlyTheOuterTwo() throws Exception {
    ModelProto three = convStack(List.of(0, 1, 2));
    RemovableBlocks.Analysis a = RemovableBlocks.find(three);
    assertThat(a.blocks()).extracting(RemovableBlocks.Block::input).containsExactly("x", "r0", "r1");
    assertThat(a.blocks()).extracting(RemovableBlocks.Block::output).containsExactly("r0", "r1", "r2");
    assertThat(a.blocks()).allMatch(bl -> bl.parameters() == 4 * 4 * 9 + 4);

    ModelProto removed = RemovableBlocks.remove(three, a, List.of(1));

    assertThat(OnnxModels.summarize(removed).parameterCount())
        .isEqualTo(OnnxModels.summarize(three).parameterCount() - (4 * 4 * 9 + 4));
    float[] input = OnnxGraphBuilder.randomFloats(99, 3 * 4 * 6 * 6, 1f);
    float[] got;
    float[] want;
    try (OrtRunner r = new OrtRunner(OnnxGraphBuilder.write(removed, dir))) {
      got = r.run("logits", "x", input, 3, 4, 6, 6);
    }
    try (OrtRunner r = new OrtRunner(OnnxGraphBuilder.write(convStack(List.of(0, 2)), dir))) {
      want = r.run("logits", "x", input, 3, 4, 6, 6);
    }
    assertThat(got).hasSize(3 * 3).containsExactly(want);
  }

  @Test
  void removingTheLastBlockKeepsTheOutputNameThroughAnIdentity() throws Exception {
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(13).inputSymbolic("x", TensorProto.DataType.FLOAT, "N", 8);
    String x = "x";
    for (int i = 0; i < 3; i++) {
      b.initializer("w" + i, OnnxGraphBuilder.randomFloats(i, 64, 0.3f), 8, 8).matMul(x, "w" + i, "h" + i)
          .relu("h" + i, i == 2 ? "y" : "r" + i);
      x = "r" + i;
    }
    ModelProto m = b.output("y").build();
    RemovableBlocks.Analysis a = RemovableBlocks.find(m);
    assertThat(a.blocks()).extracting(RemovableBlocks.Block::output).containsExactly("r0", "r1", "y");

    ModelProto one = RemovableBlocks.keep(m, a, List.of(0));

    assertThat(names(one.getGraph().getOutputList())).containsExactly("y");
    assertThat(one.getGraph().getInitializerList()).extracting(TensorProto::getName).containsExactly("w0");
    float[] input = OnnxGraphBuilder.randomFloats(5, 2 * 8, 1f);
    float[] w0 = OnnxTensors.toFloats(m.getGraph().getInitializer(0));
    float[] expected = new float[2 * 8];
    for (int r = 0; r < 2; r++) {
      for (int j = 0; j < 8; j++) {
        float s = 0;
        for (int k = 0; k < 8; k++) {
          s += input[r * 8 + k] * w0[k * 8 + j];
        }
        expected[r * 8 + j] = Math.max(0, s);
      }
    }
    try (OrtRunner r = new OrtRunner(OnnxGraphBuilder.write(one, dir))) {
      assertThat(r.run("y", "x", input, 2, 8)).containsExactly(expected, org.assertj.core.data.Offset.offset(1e-5f));
    }
  }

  /** Conv(4 -> 4, 3x3, pad 1) + Relu blocks with the weights of block {@code i} seeded by i, then a classifier. */
  private static ModelProto convStack(List<Integer> blocks) {
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(13).inputSymbolic("x", TensorProto.DataType.FLOAT, "N", 4, 6, 6);
    String x = "x";
    for (int i : blocks) {
      b.initializer("w" + i, OnnxGraphBuilder.randomFloats(i, 4 * 4 * 9, 0.3f), 4, 4, 3, 3)
          .initializer("b" + i, OnnxGraphBuilder.randomFloats(10 + i, 4, 0.1f), 4)
          .conv(x, "w" + i, "b" + i, "c" + i, 1).relu("c" + i, "r" + i);
      x = "r" + i;
    }
    return b.initializer("fc", OnnxGraphBuilder.randomFloats(7, 144 * 3, 0.1f), 144, 3)
        .flatten(x, "flat", 1).matMul("flat", "fc", "logits").output("logits").build();
  }

  private static long initializerElements(ModelProto m) {
    return m.getGraph().getInitializerList().stream().mapToLong(t -> OnnxTensors.elementCount(t.getDimsList())).sum();
  }

  private static NodeProto node(ModelProto m, String name) {
    return m.getGraph().getNodeList().stream().filter(n -> n.getName().equals(name)).findFirst().orElseThrow();
  }

  private static List<String> names(List<dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto> values) {
    return values.stream().map(v -> v.getName()).toList();
  }
}
