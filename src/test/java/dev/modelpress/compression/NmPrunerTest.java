package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NmPrunerTest {

  @TempDir Path dir;

  @Test
  void keepsTheTwoLargestOfEveryFourAlongTheInputAxisOfAMatMulWeight() {
    // W [K=8, N=2], row-major: column n's groups are rows 0-3 and 4-7.
    float[] w = {
        1, -9, //
        -5, 2, //
        3, 8, //
        -2, -1, //
        0.5f, 4, //
        0.5f, 4, //
        -0.7f, 3, //
        0.1f, 5};
    NmPruner.prune("W", w, List.of(8L, 2L), 0, 2, 4);
    assertThat(w).containsExactly(
        0, -9, //
        -5, 0, //
        3, 8, //
        0, 0, //
        0.5f, 4, // tie 0.5/0.5: both kept; tie 4/4 with 5 largest: the earlier 4 kept
        0, 0, //
        -0.7f, 0, //
        0, 5);
  }

  @Test
  void groupsOfAConvRunAlongInputChannels() {
    // W [O=1, C=4, 1, 2]: groups over C at each of the 2 kernel positions.
    float[] w = {1, 10, 2, 20, 3, 30, 4, 40};
    NmPruner.prune("W", w, List.of(1L, 4L, 1L, 2L), 1, 1, 4);
    assertThat(w).containsExactly(0, 0, 0, 0, 0, 0, 4, 40);
  }

  @Test
  void refusesAnInputAxisThatGroupsDoNotTile() {
    assertThatThrownBy(() -> NmPruner.prune("W", new float[6 * 2], List.of(6L, 2L), 0, 2, 4))
        .isInstanceOf(CompressionException.class)
        .hasMessageContaining("tensor 'W' has 6 weights along its input axis 0, not a multiple of m = 4");
  }

  @Test
  void gemmWithTransBGroupsAlongItsSecondAxis() {
    ModelProto m = OnnxGraphBuilder.opset(13)
        .input("x", 1, 8)
        .initializer("W", OnnxGraphBuilder.randomFloats(1, 3 * 8, 1f), 3, 8)
        .initializer("V", OnnxGraphBuilder.randomFloats(2, 3 * 2, 1f), 3, 2)
        .gemm("x", "W", null, "h", true)
        .matMul("h", "V", "y")
        .output("y")
        .build();
    ModelProto r = OnnxPipeline.run(m, List.of(PruneSpec.nm(2, 4)), Progress.NONE).model();
    float[] w = Models.floats(r, "W");
    for (int row = 0; row < 3; row++) {
      for (int g = 0; g < 2; g++) {
        int nz = 0;
        for (int j = 0; j < 4; j++) {
          nz += w[row * 8 + g * 4 + j] != 0 ? 1 : 0;
        }
        assertThat(nz).isEqualTo(2);
      }
    }
    // V feeds the graph output: the final classifier is left alone by default.
    assertThat(Models.zeros(Models.floats(r, "V"))).isZero();
  }

  @Test
  void twoFourOnMiniLmLeavesExactlyTwoNonZerosInEveryGroupOfFourAndStillRuns() throws Exception {
    ModelProto original = OnnxModels.read(MiniLm.path());
    PipelineResult r = OnnxPipeline.run(original, List.of(PruneSpec.nm(2, 4)), Progress.NONE);
    List<TensorReport> tensors = r.steps().getFirst().tensors();
    // The 36 MatMul weights; embeddings, LayerNorm and biases are protected by default.
    assertThat(tensors).hasSize(36);
    long groups = 0;
    long exact = 0;
    for (TensorReport t : tensors) {
      TensorProto p = Models.initializer(r.model(), t.name());
      TensorProto before = Models.initializer(original, t.name());
      assertThat(p.getDimsCount()).isEqualTo(2);
      int k = (int) p.getDims(0);
      int n = (int) p.getDims(1);
      float[] w = Models.floats(r.model(), t.name());
      float[] w0 = Models.floats(original, t.name());
      for (int col = 0; col < n; col++) {
        for (int g = 0; g < k; g += 4) {
          int nz = 0;
          int nzBefore = 0;
          for (int j = 0; j < 4; j++) {
            nz += w[(g + j) * n + col] != 0 ? 1 : 0;
            nzBefore += w0[(g + j) * n + col] != 0 ? 1 : 0;
          }
          groups++;
          assertThat(nz).as("%s column %d group %d", t.name(), col, g / 4).isEqualTo(Math.min(2, nzBefore));
          exact += nz == 2 ? 1 : 0;
        }
      }
      assertThat(before.getDimsList()).isEqualTo(p.getDimsList());
    }
    System.out.printf("2:4 on MiniLM: %d tensors, %d groups of 4, %d with exactly 2 non-zeros%n", tensors.size(),
        groups, exact);
    assertThat(exact).isEqualTo(groups);

    Path out = OnnxGraphBuilder.write(r.model(), dir);
    Random random = new Random(7);
    double sum = 0;
    try (OrtRunner fp32 = new OrtRunner(MiniLm.path()); OrtRunner sparse = new OrtRunner(out)) {
      for (int s = 0; s < 5; s++) {
        var input = MiniLm.randomInput(random, 16);
        float[] y = sparse.run(MiniLm.OUTPUT, input);
        assertThat(y).hasSize(16 * MiniLm.HIDDEN);
        sum += MiniLm.cosine(fp32.run(MiniLm.OUTPUT, input), y);
      }
    }
    System.out.printf("2:4 on MiniLM: mean token-embedding cosine to fp32 %.4f%n", sum / 5);
    assertThat(sum / 5).isGreaterThan(0.5);
  }
}
