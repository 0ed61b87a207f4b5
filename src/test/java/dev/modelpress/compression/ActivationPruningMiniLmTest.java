package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.MiniLm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Wanda and SparseGPT on the real all-MiniLM-L6-v2 at 50%: calibrated on half of the test
 * sentences, measured on the other half (layer-output error on the held-out layer inputs and the
 * held-out sentence-embedding cosine), against magnitude pruning of the same tensors.
 */
class ActivationPruningMiniLmTest {

  /** All 36 MatMul weights of the encoder. */
  static final List<String> MATMUL_WEIGHTS = List.of("onnx::MatMul_\\d+");

  @TempDir static Path dir;
  static ModelProto original;

  @BeforeAll
  static void read() throws Exception {
    original = OnnxModels.read(MiniLm.modelFile());
  }

  static PipelineResult run(String method, List<dev.modelpress.format.npy.NdArray> data) {
    PruneSpec spec = new PruneSpec(method, 0.5, null, PruneSpec.Scope.LAYER, MATMUL_WEIGHTS, List.of());
    PipelineContext ctx = PipelineContext.calibrated(data, dir).withMaxCalibrationSamples(16);
    return OnnxPipeline.run(original, List.of(spec), ctx, Progress.NONE);
  }

  static double heldOutCosine(ModelProto model) throws Exception {
    Path out = Files.createTempFile(dir, "pruned-", ".onnx");
    OnnxModels.write(model, out);
    return CalibrationData.meanSentenceCosine(MiniLm.modelFile(), out, CalibrationData.evaluation());
  }

  @Test
  void wandaAndSparseGptBeatMagnitudeAtHalfSparsityOnHeldOutSentences() throws Exception {
    PipelineResult wanda = run(PruneSpec.WANDA, CalibrationData.calibration());
    PipelineResult sparseGpt = run(PruneSpec.SPARSEGPT, CalibrationData.calibration());
    PipelineResult magnitude = OnnxPipeline.run(original,
        List.of(new PruneSpec(PruneSpec.MAGNITUDE, 0.5, null, PruneSpec.Scope.LAYER, MATMUL_WEIGHTS, List.of())),
        PipelineContext.none(dir), Progress.NONE);

    // Exact sparsity: Wanda floor(K/2) zeros in every output, SparseGPT exactly half of every tensor.
    assertThat(wanda.steps().getFirst().tensors()).hasSize(36);
    for (TensorReport t : wanda.steps().getFirst().tensors()) {
      assertExactHalfPerOutput(wanda.model(), t.name());
    }
    for (TensorReport t : sparseGpt.steps().getFirst().tensors()) {
      assertThat(t.sparsityAfter()).as(t.name()).isEqualTo(0.5);
      assertExactHalfPerOutput(sparseGpt.model(), t.name());
    }

    double magnitudeCosine = heldOutCosine(magnitude.model());
    double wandaCosine = heldOutCosine(wanda.model());
    double sparseGptCosine = heldOutCosine(sparseGpt.model());
    System.out.printf("MiniLM 50%% of 36 MatMul weights, 16 calibration sentences, held-out sentence cosine: "
        + "magnitude %.5f, wanda %.5f, sparsegpt %.5f%n  %s%n  %s%n", magnitudeCosine, wandaCosine, sparseGptCosine,
        wanda.steps().getFirst().summary(), sparseGpt.steps().getFirst().summary());
    assertThat(wandaCosine).isGreaterThan(magnitudeCosine);
    assertThat(sparseGptCosine).isGreaterThan(magnitudeCosine);
  }

  static void assertExactHalfPerOutput(ModelProto model, String name) {
    TensorProto t = model.getGraph().getInitializerList().stream().filter(x -> x.getName().equals(name)).findFirst()
        .orElseThrow();
    float[] w = OnnxTensors.toFloats(t);
    int k = (int) t.getDims(0);
    int n = (int) t.getDims(1);
    for (int c = 0; c < n; c++) {
      int zeros = 0;
      for (int j = 0; j < k; j++) {
        zeros += w[j * n + c] == 0f ? 1 : 0;
      }
      assertThat(zeros).as(name + " output " + c).isEqualTo(k / 2);
    }
  }
}
