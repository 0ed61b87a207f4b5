package dev.modelpress.training;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.MiniLm;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The real all-MiniLM-L6-v2 encoder (as PyTorch exported it, opset 11: attention spelled out in
 * MatMul/Softmax, LayerNorm in ReduceMean/Pow/Sqrt, GELU in Erf, dynamic shapes in
 * Shape/Gather/Unsqueeze/Concat/Reshape) translates, computes ONNX Runtime's hidden states on real
 * sentences, and differentiates for every weight.
 */
class OnnxTranslatorMiniLmTest {

  private static ModelProto model;
  private static TrainableGraph graph;

  @TempDir
  Path dir;

  @BeforeAll
  static void translate() throws Exception {
    model = OnnxModels.read(MiniLm.modelFile());
    graph = OnnxTranslator.translate(model);
  }

  @Test
  void miniLmTranslatesWithAllItsWeightsButTheVocabularyTrainable() {
    assertThat(OnnxTranslator.unsupported(model)).isEmpty();
    assertThat(graph.inputs()).containsExactlyElementsOf(MiniLm.INPUTS);
    // 6 layers x 16 tensors (4 attention projections and 2 feed-forward layers, weight and bias
    // each, 2 LayerNorms) + position and token-type embeddings + the embedding LayerNorm.
    assertThat(graph.trainable()).hasSize(6 * 16 + 2 + 2)
        .contains("embeddings.position_embeddings.weight", "encoder.layer.5.output.LayerNorm.bias")
        // 30,522 rows: frozen by default, its one-hot lookup gradient would cost [tokens, 30522].
        .doesNotContain("embeddings.word_embeddings.weight");
    long parameters = graph.weights().values().stream().mapToLong(INDArray::length).sum();
    // 22,565,376 float parameters in the export (no pooler) minus the 30,522 x 384 vocabulary.
    assertThat(parameters).isEqualTo(22_565_376L - 30_522L * 384);
  }

  @Test
  void miniLmComputesOnnxRuntimesHiddenStatesOnRealSentences() {
    Map<String, INDArray> feeds = feeds(MiniLm.sentences().subList(0, 8), 24);
    OrtAgreement.Result r = OrtAgreement.compare(model, graph, feeds, dir);

    System.out.printf(Locale.ROOT, "all-MiniLM-L6-v2: %d hidden-state values, max error %.3g (max abs difference %.3g)%n",
        r.elements(), r.maxError(), r.maxAbsDifference());
    assertThat(r.elements()).isEqualTo(feeds.get("input_ids").length() * MiniLm.HIDDEN);
    assertThat(r.maxError()).isLessThan(1e-4);
  }

  @Test
  void everyTrainedMiniLmWeightGetsAGradient() {
    SameDiff sd = graph.sameDiff();
    if (!sd.hasVariable("loss")) {
      SDVariable hidden = graph.value(MiniLm.OUTPUT);
      sd.setLossVariables(sd.mean("loss", hidden.mul(hidden)));
    }

    Map<String, INDArray> gradients = sd.calculateGradients(feeds(MiniLm.sentences().subList(0, 2), 12),
        graph.trainable());

    assertThat(gradients.keySet()).containsExactlyInAnyOrderElementsOf(graph.trainable());
    for (String name : graph.trainable()) {
      INDArray g = gradients.get(name);
      assertThat(g.shape()).as(name).isEqualTo(graph.weights().get(name).shape());
      assertThat(g.norm2Number().doubleValue()).as(name).isGreaterThan(0).isFinite();
    }
  }

  private static Map<String, INDArray> feeds(List<String> sentences, int maxLength) {
    Map<String, INDArray> feeds = new LinkedHashMap<>();
    for (NdArray a : MiniLm.encode(sentences, maxLength)) {
      long[] values = new long[(int) a.elementCount()];
      a.data().duplicate().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(values);
      feeds.put(a.name(), Nd4j.createFromArray(values).reshape(a.shape()));
    }
    return feeds;
  }
}
