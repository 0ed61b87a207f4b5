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
}
