package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Attention-head removal on the real all-MiniLM-L6-v2 (6 layers × 12 heads of 32). */
class HeadPrunerMiniLmTest {

  /** Parameters of one head: Q, K, V columns with their biases, and output-projection rows. */
  static final long PER_HEAD = 3 * (384 * 32 + 32) + 32 * 384;

  static ModelProto original;

  @TempDir Path dir;

  @BeforeAll
  static void read() throws Exception {
    original = OnnxModels.read(MiniLm.modelFile());
  }

  static PruneSpec heads(double sparsity) {
    return PruneSpec.structured(sparsity, PruneSpec.Criterion.L1, PruneSpec.Target.HEADS);
  }

  @Test
  void removingTwoOfTwelveHeadsPerLayerShrinksMiniLmByExactlyTheirWeightsAndItStillEmbeds() throws Exception {
    PipelineResult r = OnnxPipeline.run(original, List.of(heads(2 / 12.0)), Progress.NONE);
    ModelProto pruned = r.model();
    long before = OnnxModels.summarize(original).parameterCount();
    long after = OnnxModels.summarize(pruned).parameterCount();
    assertThat(before - after).isEqualTo(6 * 2 * PER_HEAD);

    Path originalFile = MiniLm.modelFile();
    Path prunedFile = OnnxGraphBuilder.write(pruned, dir);
    List<NdArray> inputs = MiniLm.encode(MiniLm.sentences(), 64);
    double cosine = CalibrationData.meanSentenceCosine(originalFile, prunedFile, inputs);
    double minCosine = minSentenceCosine(originalFile, prunedFile, inputs);
    double paraphrase = paraphraseAgreement(prunedFile, inputs);
    System.out.printf("MiniLM, 2 of 12 heads removed per layer (L1): parameters %d -> %d (-%d), file %d -> %d B; "
        + "sentence cosine to the original mean %.4f, min %.4f over %d sentences; paraphrase pairs ranked first %.2f%n%s%n",
        before, after, before - after, Files.size(originalFile), Files.size(prunedFile), cosine, minCosine,
        MiniLm.sentences().size(), paraphrase, r.steps().getFirst().summary());
    // Measured: mean 0.9406, min 0.8085 over the kit's 63 sentences, every paraphrase pair still
    // nearest; one-shot without retraining. The bounds leave room for rounding only.
    assertThat(cosine).isGreaterThan(0.935);
    assertThat(minCosine).isGreaterThan(0.80);
    assertThat(paraphrase).isEqualTo(1.0);
    assertThat(Files.size(prunedFile)).isLessThan(Files.size(originalFile) - 6 * 2 * PER_HEAD * 4 + 4096);

    @SuppressWarnings("unchecked")
    List<Map<String, Object>> layers = (List<Map<String, Object>>) r.steps().getFirst().details().get("layers");
    assertThat(layers).hasSize(6).allSatisfy(l -> {
      assertThat(l).containsEntry("headsBefore", 12).containsEntry("headsAfter", 10).containsEntry("headDim", 32);
      assertThat((List<?>) l.get("removedHeads")).hasSize(2);
    });
    // Exactness of the rewrite: the kept heads compute what they computed before, so the smaller
    // model equals the original with the removed heads' output-projection rows zeroed.
    Map<String, float[]> zeroed = new java.util.HashMap<>();
    for (Map<String, Object> l : layers) {
      String o = (String) ((List<?>) l.get("weights")).get(3);
      float[] w = Models.floats(original, o);
      for (Object head : (List<?>) l.get("removedHeads")) {
        java.util.Arrays.fill(w, (Integer) head * 32 * 384, ((Integer) head + 1) * 32 * 384, 0f);
      }
      zeroed.put(o, w);
    }
    Path reference = OnnxGraphBuilder.write(StructuredPrunerTest.replace(original, zeroed), dir);
    float[][] expected = MiniLm.sentenceEmbeddings(reference, inputs);
    float[][] actual = MiniLm.sentenceEmbeddings(prunedFile, inputs);
    double maxDiff = 0;
    for (int i = 0; i < expected.length; i++) {
      for (int j = 0; j < expected[i].length; j++) {
        maxDiff = Math.max(maxDiff, Math.abs(expected[i][j] - actual[i][j]));
      }
    }
    System.out.printf("MiniLM heads removed vs original with those heads' output rows zeroed: max |diff| %.3g%n",
        maxDiff);
    assertThat(maxDiff).isLessThan(1e-4);
    assertThat(Models.initializer(pruned, "onnx::MatMul_787").getDimsList()).containsExactly(384L, 320L);
    assertThat(Models.initializer(pruned, "encoder.layer.0.attention.self.query.bias").getDimsList())
        .containsExactly(320L);
    assertThat(Models.initializer(pruned, "onnx::MatMul_797").getDimsList()).containsExactly(320L, 384L);
  }

  @Test
  void removingMoreHeadsCostsMoreFidelity() throws Exception {
    List<NdArray> inputs = MiniLm.encode(MiniLm.sentences(), 64);
    double half = CalibrationData.meanSentenceCosine(MiniLm.modelFile(),
        OnnxGraphBuilder.write(OnnxPipeline.run(original, List.of(heads(0.5)), Progress.NONE).model(), dir), inputs);
    double two = CalibrationData.meanSentenceCosine(MiniLm.modelFile(),
        OnnxGraphBuilder.write(OnnxPipeline.run(original, List.of(heads(2 / 12.0)), Progress.NONE).model(), dir),
        inputs);
    System.out.printf("MiniLM head removal: mean sentence cosine 2/12 heads %.4f, 6/12 heads %.4f%n", two, half);
    assertThat(half).isLessThan(two);
  }

  @Test
  void aReshapeWhoseHeadCountIsComputedAtRunTimeIsRefusedWithTheReason() {
    // Layer 0's Q reshape takes its head count from a Shape-derived value instead of a constant.
    GraphProto.Builder g = original.getGraph().toBuilder();
    for (int i = 0; i < g.getNodeCount(); i++) {
      NodeProto n = g.getNode(i);
      if (n.getName().equals("/encoder/layer.0/attention/self/Concat_2")) {
        g.setNode(i, n.toBuilder().setInput(2, "/encoder/layer.0/attention/self/Gather_4_output_0"));
      }
    }
    ModelProto broken = original.toBuilder().setGraph(g).build();
    PruneSpec layer0 = heads(0.17).withSelection(List.of("onnx::MatMul_78[78]", "onnx::MatMul_791",
        "onnx::MatMul_797"), List.of());
    assertThatThrownBy(() -> OnnxPipeline.run(broken, List.of(layer0), Progress.NONE))
        .isInstanceOf(CompressionException.class)
        .hasMessageContaining("layer.0/attention/self/Softmax")
        .hasMessageContaining("Q's Reshape shape is concatenated from '/encoder/layer.0/attention/self/Gather_4_output_0'");
    // By default that block is skipped with its reason and the other five lose their heads.
    PipelineResult r = OnnxPipeline.run(broken, List.of(heads(0.17)), Progress.NONE);
    assertThat((List<?>) r.steps().getFirst().details().get("layers")).hasSize(5);
    assertThat(((Map<?, ?>) r.steps().getFirst().details().get("skipped")).keySet().toString())
        .contains("layer.0");
    assertThat(OnnxModels.summarize(original).parameterCount() - OnnxModels.summarize(r.model()).parameterCount())
        .isEqualTo(5 * 2 * PER_HEAD);
  }

  @Test
  void headsRankedByActivationAreA422() {
    PruneSpec spec = PruneSpec.structured(0.5, PruneSpec.Criterion.ACTIVATION, PruneSpec.Target.HEADS);
    assertThat(SpecValidator.validate(List.of(spec), OnnxModels.summarize(original), true))
        .extracting(Violation::field).containsExactly("steps[0].criterion");
  }

  static double minSentenceCosine(Path a, Path b, List<NdArray> inputs) {
    float[][] x = MiniLm.sentenceEmbeddings(a, inputs);
    float[][] y = MiniLm.sentenceEmbeddings(b, inputs);
    double min = 1;
    for (int i = 0; i < x.length; i++) {
      min = Math.min(min, MiniLm.cosine(x[i], y[i]));
    }
    return min;
  }

  /** Fraction of the kit's paraphrase pairs whose partner is the nearest other sentence. */
  static double paraphraseAgreement(Path model, List<NdArray> inputs) {
    float[][] e = MiniLm.sentenceEmbeddings(model, inputs);
    int hits = 0;
    for (int[] pair : MiniLm.PARAPHRASES) {
      int best = -1;
      double bestCos = -2;
      for (int j = 0; j < e.length; j++) {
        if (j != pair[0] && MiniLm.cosine(e[pair[0]], e[j]) > bestCos) {
          bestCos = MiniLm.cosine(e[pair[0]], e[j]);
          best = j;
        }
      }
      hits += best == pair[1] ? 1 : 0;
    }
    return (double) hits / MiniLm.PARAPHRASES.length;
  }
}
