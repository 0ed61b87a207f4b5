package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Structured neuron pruning through an element-wise join whose two operands carry the same
 * channels: MiniLM's feed-forward GELU is x·Φ(x) written as Div, Erf, Add and Mul(x, …), so the
 * 1,536 intermediate neurons of each layer can only be followed through the Mul once both of its
 * operands are known to have lost the same neurons.
 */
class FfnNeuronPruningMiniLmTest {

  @TempDir Path dir;

  @Test
  void intermediateNeuronsOfEveryFeedForwardLayerAreRemovedThroughTheGeluJoin() throws Exception {
    ModelProto original = OnnxModels.read(MiniLm.modelFile());
    PipelineResult r = OnnxPipeline.run(original,
        List.of(PruneSpec.structured(0.25, PruneSpec.Criterion.L1, PruneSpec.Target.NEURONS)), Progress.NONE);
    ModelProto pruned = r.model();
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> layers = (List<Map<String, Object>>) r.steps().getFirst().details().get("layers");
    Map<?, ?> skipped = (Map<?, ?>) r.steps().getFirst().details().get("skipped");
    // Q, K, V (read by Shape for the per-head Reshape) and both residual-ending projections are refused; the six FFN
    // intermediate layers go from 1,536 to 1,152 neurons.
    assertThat(layers).hasSize(6).allSatisfy(l -> assertThat(l).containsEntry("channelsBefore", 1536)
        .containsEntry("channelsAfter", 1152));
    assertThat(skipped).hasSize(30);
    assertThat(skipped.values().toString()).contains("residual branch keeps every channel")
        .contains("cannot follow channels through Shape node");
    long before = OnnxModels.summarize(original).parameterCount();
    long after = OnnxModels.summarize(pruned).parameterCount();
    assertThat(before - after).isEqualTo(6L * (384 * 384 + 384 + 384 * 384));

    // Exact: the smaller model equals the original with the removed neurons' rows of the FFN
    // output projection zeroed.
    Map<String, float[]> zeroed = new HashMap<>();
    for (Map<String, Object> l : layers) {
      String w = (String) l.get("weight");
      int[] kept = StructuredPrunerTest.keptRows(RedundancyPrunerTest.transpose(Models.floats(original, w), 384, 1536),
          RedundancyPrunerTest.transpose(Models.floats(pruned, w), 384, 1152), 384);
      String next = ((List<?>) l.get("tensorsChanged")).stream().map(String.class::cast)
          .filter(t -> Models.initializer(original, t).getDimsList().equals(List.of(1536L, 384L))).findFirst()
          .orElseThrow();
      float[] rows = Models.floats(original, next);
      boolean[] keep = StructuredPrunerTest.mask(1536, kept);
      for (int k = 0; k < 1536; k++) {
        if (!keep[k]) {
          java.util.Arrays.fill(rows, k * 384, (k + 1) * 384, 0f);
        }
      }
      zeroed.put(next, rows);
    }
    List<NdArray> inputs = MiniLm.encode(MiniLm.sentences(), 64);
    Path prunedFile = OnnxGraphBuilder.write(pruned, dir);
    float[][] expected = MiniLm.sentenceEmbeddings(OnnxGraphBuilder.write(StructuredPrunerTest.replace(original, zeroed),
        dir), inputs);
    float[][] actual = MiniLm.sentenceEmbeddings(prunedFile, inputs);
    double maxDiff = 0;
    for (int i = 0; i < expected.length; i++) {
      for (int j = 0; j < expected[i].length; j++) {
        maxDiff = Math.max(maxDiff, Math.abs(expected[i][j] - actual[i][j]));
      }
    }
    double cosine = CalibrationData.meanSentenceCosine(MiniLm.modelFile(), prunedFile, inputs);
    System.out.printf("MiniLM FFN neurons 25%% (L1) through the GELU join: parameters %d -> %d; max |diff| to the "
        + "zeroed original %.3g; mean sentence cosine to the original %.4f%n", before, after, maxDiff, cosine);
    assertThat(maxDiff).isLessThan(1e-4);
    // Measured 0.8312: a quarter of the FFN neurons by weight norm, one-shot.
    assertThat(cosine).isGreaterThan(0.82);
  }
}
