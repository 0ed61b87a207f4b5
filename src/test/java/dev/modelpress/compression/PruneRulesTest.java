package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What pruning leaves alone by default, and the validation of nm, structured and share steps. */
class PruneRulesTest {

  static final ModelSummary MLP = OnnxModels.summarize(Models.mlp(13));

  /** Embedding -> LayerNormalization -> MatMul W + bias -> Add -> MatMul Wc -> Softmax -> y. */
  static ModelProto tagger() {
    return OnnxGraphBuilder.opset(17)
        .input("ids", dev.modelpress.model.onnx.proto.OnnxProto.TensorProto.DataType.INT64, 1, 4)
        .initializer("emb", OnnxGraphBuilder.randomFloats(1, 10 * 8, 1f), 10, 8)
        .initializer("ln.g", OnnxGraphBuilder.randomFloats(2, 8, 1f), 8)
        .initializer("ln.b", OnnxGraphBuilder.randomFloats(3, 8, 1f), 8)
        .initializer("W", OnnxGraphBuilder.randomFloats(4, 8 * 8, 1f), 8, 8)
        .initializer("bias", OnnxGraphBuilder.randomFloats(5, 8, 1f), 8)
        .initializer("Wc", OnnxGraphBuilder.randomFloats(6, 8 * 3, 1f), 8, 3)
        .initializer("bc", OnnxGraphBuilder.randomFloats(7, 3, 1f), 3)
        .gather("emb", "ids", "e")
        .node("LayerNormalization", List.of("e", "ln.g", "ln.b"), List.of("n"))
        .matMul("n", "W", "h").add("h", "bias", "hb").relu("hb", "r")
        .matMul("r", "Wc", "logits").add("logits", "bc", "lb")
        .node("Softmax", List.of("lb"), List.of("y"))
        .output("y")
        .build();
  }

  @Test
  void biasesNormsEmbeddingsAndTheClassifierAreProtectedUnlessIncluded() {
    ModelProto m = tagger();
    List<TensorInfo> tensors = OnnxModels.summarize(m).tensors();
    assertThat(tensors.stream().map(t -> t.name() + "=" + TensorSelector.pruneProtection(t)).toList())
        .contains("emb=embedding table", "ln.g=normalization parameter", "ln.b=normalization parameter",
            "bias=bias", "W=null", "Wc=null");
    assertThat(TensorSelector.finalClassifierWeights(m.getGraph())).containsExactly("Wc");
    assertThat(TensorSelector.selectForPrune(m.getGraph(), tensors, List.of(), List.of())).extracting(TensorInfo::name)
        .containsExactly("W");
    // An include overrides every protection.
    assertThat(TensorSelector.selectForPrune(m.getGraph(), tensors, List.of("emb", "Wc", "ln\\.g"), List.of()))
        .extracting(TensorInfo::name).containsExactly("emb", "ln.g", "Wc");
    // Quantization's default is unchanged: weights of rank >= 2, embeddings and classifier included.
    assertThat(TensorSelector.select(tensors, List.of(), List.of())).extracting(TensorInfo::name)
        .containsExactly("emb", "W", "Wc");
  }

  @Test
  void miniLmHiddenLayersEndingInLayerNormAreNotMistakenForAClassifier() throws Exception {
    ModelProto m = OnnxModels.read(MiniLm.path());
    assertThat(TensorSelector.finalClassifierWeights(m.getGraph())).isEmpty();
  }

  @Test
  void anExplainedViolationWhenProtectionsLeaveNothingToPrune() {
    ModelSummary embeddingOnly = OnnxModels.summarize(OnnxGraphBuilder.opset(13)
        .input("ids", dev.modelpress.model.onnx.proto.OnnxProto.TensorProto.DataType.INT64, 4)
        .initializer("emb", OnnxGraphBuilder.randomFloats(1, 40, 1f), 10, 4)
        .gather("emb", "ids", "y").output("y").build());
    assertThat(SpecValidator.validate(List.of(PruneSpec.layer(0.5)), embeddingOnly))
        .singleElement().extracting(Violation::message).asString()
        .contains("not protected: biases, normalization parameters, embedding tables and the final classifier are "
            + "not pruned by default; name them in include to prune them");
  }

  @Test
  void nmNeedsNBelowMAndGroupsThatTileTheInputAxis() {
    assertThat(SpecValidator.validate(List.of(PruneSpec.nm(2, 4)), MLP)).isEmpty();
    assertThat(SpecValidator.validate(List.of(PruneSpec.nm(4, 4)), MLP))
        .containsExactly(new Violation("steps[0].n", "must be at least 1 and below m = 4 (got 4)"));
    assertThat(SpecValidator.validate(List.of(PruneSpec.nm(1, 128)), MLP))
        .containsExactly(new Violation("steps[0].m", "must be between 2 and 64 (got 128)"));
    // W1 is [32, 40], W2 [40, 24]: groups of 16 tile 32 but not 40.
    assertThat(SpecValidator.validate(List.of(PruneSpec.nm(2, 16).withSelection(List.of("W1", "W2"), List.of())), MLP))
        .containsExactly(new Violation("steps[0].include", "tensor 'W2' has 40 weights along its input axis, not a "
            + "multiple of m = 16; exclude it or choose another m"));
    // With the default selection the classifier W3 [24, 16] is not pruned, so only the run decides.
    assertThat(SpecValidator.validate(List.of(PruneSpec.nm(2, 8)), MLP)).isEmpty();
    assertThat(OnnxPipeline.run(Models.mlp(13), List.of(PruneSpec.nm(2, 8)), Progress.NONE).steps().getFirst()
        .tensors()).extracting(TensorReport::name).containsExactly("W1", "W2");
  }

  @Test
  void structuredNeedsAFractionOfChannelsAndLayerScope() {
    assertThat(SpecValidator.validate(List.of(PruneSpec.structured(0.5, null, null)), MLP)).isEmpty();
    assertThat(SpecValidator.validate(List.of(PruneSpec.structured(1.0, null, null)), MLP))
        .containsExactly(new Violation("steps[0].sparsity", "must be above 0 and below 1 (got 1.0)"));
    PruneSpec global = new PruneSpec(PruneSpec.STRUCTURED, 0.5, null, PruneSpec.Scope.GLOBAL, null, null, null, null,
        null, null);
    assertThat(SpecValidator.validate(List.of(global), MLP)).extracting(Violation::field)
        .containsExactly("steps[0].scope");
  }

  @Test
  void shareTakesSixteenTo256ClustersAndMustNotBeFollowedByQuantize() {
    assertThat(SpecValidator.validate(List.of(PruneSpec.layer(0.5), ShareSpec.of(16)), MLP)).isEmpty();
    assertThat(SpecValidator.validate(List.of(ShareSpec.of(300)), MLP))
        .containsExactly(new Violation("steps[0].clusters", "must be between 16 and 256 centroids per tensor (got 300)"));
    assertThat(SpecValidator.validate(List.of(ShareSpec.of(32),
            QuantizeSpec.int8(true, QuantizeSpec.Granularity.CHANNEL)), MLP))
        .extracting(Violation::field).containsExactly("steps[1]");
  }
}
