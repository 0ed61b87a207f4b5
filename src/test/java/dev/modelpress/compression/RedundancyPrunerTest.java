package dev.modelpress.compression;

import static dev.modelpress.testing.OnnxGraphBuilder.randomFloats;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.ClassifierNetwork;
import dev.modelpress.testing.FashionMnist;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Redundancy (correlation) pruning: planted twins are found and folded; on real classifiers it beats L1. */
class RedundancyPrunerTest {

  static final int HIDDEN = 12;

  @TempDir Path dir;

  /**
   * x[n,16] -> MatMul W1[16,12] -> Add b1 -> Relu -> a[n,12] -> MatMul W2[12,5] (-> Add b2) -> y.
   * Neuron 7 is neuron 2 times 2 (so after Relu a7 = 2·a2 exactly), neuron 9 a copy of neuron 4,
   * neuron 11 dead (bias −100: Relu gives 0 on every input).
   */
  static ModelProto planted(boolean withBias) {
    float[] w1 = randomFloats(1, 16 * HIDDEN, 1f);
    float[] b1 = randomFloats(2, HIDDEN, 0.5f);
    for (int r = 0; r < 16; r++) {
      w1[r * HIDDEN + 7] = 2 * w1[r * HIDDEN + 2];
      w1[r * HIDDEN + 9] = w1[r * HIDDEN + 4];
    }
    b1[7] = 2 * b1[2];
    b1[9] = b1[4];
    b1[11] = -100;
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(13)
        .input("x", -1, 16)
        .initializer("W1", w1, 16, HIDDEN)
        .initializer("b1", b1, HIDDEN)
        .initializer("W2", randomFloats(3, HIDDEN * 5, 1f), HIDDEN, 5)
        .matMul("x", "W1", "h")
        .add("h", "b1", "hb")
        .relu("hb", "a");
    if (withBias) {
      b.initializer("b2", randomFloats(4, 5, 0.3f), 5).matMul("a", "W2", "p").add("p", "b2", "y");
    } else {
      b.matMul("a", "W2", "y");
    }
    return b.output("y").build();
  }

  static List<NdArray> normal(String name, int n, int width, long seed) {
    Random random = new Random(seed);
    ByteBuffer data = ByteBuffer.allocate(n * width * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n * width; i++) {
      data.putFloat((float) random.nextGaussian());
    }
    return List.of(new NdArray(name, DType.FLOAT32, new long[] {n, width}, data.flip()));
  }

  @Test
  void plantedDuplicateScaledAndDeadNeuronsAreRemovedAndTheOutputBarelyChanges() throws Exception {
    for (boolean withBias : new boolean[] {true, false}) {
      ModelProto original = planted(withBias);
      PipelineContext ctx = new PipelineContext(normal("x", 256, 16, 7), dir, 256, 64, 1);
      PruneSpec spec = new PruneSpec(PruneSpec.CORRELATION, null, 0.999, PruneSpec.Scope.LAYER, List.of("W1"),
          List.of());
      PipelineResult r = OnnxPipeline.run(original, List.of(spec), ctx, Progress.NONE);
      ModelProto pruned = r.model();

      assertThat(Models.initializer(pruned, "W1").getDimsList()).containsExactly(16L, 9L);
      assertThat(Models.initializer(pruned, "W2").getDimsList()).containsExactly(9L, 5L);
      int[] kept = StructuredPrunerTest.keptRows(transpose(Models.floats(original, "W1"), 16, HIDDEN),
          transpose(Models.floats(pruned, "W1"), 16, 9), 16);
      List<Integer> keptList = java.util.Arrays.stream(kept).boxed().toList();
      // One of each twin pair stays, the other and the dead neuron go; every other neuron stays.
      assertThat(keptList.contains(2) ^ keptList.contains(7)).isTrue();
      assertThat(keptList.contains(4) ^ keptList.contains(9)).isTrue();
      assertThat(keptList).doesNotContain(11).contains(0, 1, 3, 5, 6, 8, 10);

      float[] x = randomFloats(99, 64 * 16, 1.5f);
      float[] before;
      float[] after;
      try (OrtRunner a = new OrtRunner(OnnxGraphBuilder.write(original, dir));
          OrtRunner b = new OrtRunner(OnnxGraphBuilder.write(pruned, dir))) {
        before = a.run("y", "x", x, 64, 16);
        after = b.run("y", "x", x, 64, 16);
      }
      double maxDiff = 0;
      double maxAbs = 0;
      for (int i = 0; i < before.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(before[i] - after[i]));
        maxAbs = Math.max(maxAbs, Math.abs(before[i]));
      }
      System.out.printf("correlation pruning of planted twins (%s bias): kept %s, max |Δy| %.3g (max |y| %.2f)%n",
          withBias ? "with" : "without", keptList, maxDiff, maxAbs);
      assertThat(maxDiff).isLessThan(1e-4);
      assertThat(maxAbs).isGreaterThan(1);
      // Without a bias Add the dead neuron's constant (0 after Relu) and the twins' β ≈ 0 go into a new Add.
      assertThat(Models.hasInitializer(pruned, "W2_folded_bias")).isEqualTo(!withBias);
      @SuppressWarnings("unchecked")
      List<Map<String, Object>> layers = (List<Map<String, Object>>) r.steps().getFirst().details().get("layers");
      assertThat(layers).hasSize(1);
      assertThat(layers.getFirst()).containsEntry("neuronsBefore", 12).containsEntry("neuronsAfter", 9)
          .containsEntry("constantNeurons", 1L);
      assertThat((double) layers.getFirst().get("minAbsR")).isGreaterThan(0.999999);
    }
  }

  @Test
  void onTheFashionClassifiersTheFoldLeavesLessOutputErrorThanL1AtTheSameNeuronCount() throws Exception {
    List<NdArray> calibration = FashionMnist.trainSet(1024);
    List<NdArray> test = FashionMnist.testSet(10_000);
    for (ClassifierNetwork net : List.of(ClassifierNetwork.MLP, ClassifierNetwork.CNN)) {
      Path file = Classifier.model(net);
      ModelProto original = OnnxModels.read(file);
      PipelineContext ctx = new PipelineContext(calibration, dir, 1024, 128, 2);
      double sparsity = 0.5;
      PipelineResult corr = OnnxPipeline.run(original, List.of(new PruneSpec(PruneSpec.CORRELATION, sparsity, null,
          PruneSpec.Scope.LAYER, List.of(), List.of())), ctx, Progress.NONE);
      ModelProto l1 = OnnxPipeline.run(original, List.of(PruneSpec.structured(sparsity, PruneSpec.Criterion.L1,
          PruneSpec.Target.NEURONS)), Progress.NONE).model();
      long paramsCorr = OnnxModels.summarize(corr.model()).parameterCount();
      long paramsL1 = OnnxModels.summarize(l1).parameterCount();
      // The same number of neurons leaves each layer: the same shapes (the consumers are Gemm with a bias C).
      assertThat(paramsCorr).isEqualTo(paramsL1);

      Path corrFile = OnnxGraphBuilder.write(corr.model(), dir);
      Path l1File = OnnxGraphBuilder.write(l1, dir);
      float[][] ref = Classifier.logits(file, test);
      double errCorr = meanSquaredError(ref, Classifier.logits(corrFile, test));
      double errL1 = meanSquaredError(ref, Classifier.logits(l1File, test));
      double accDense = Classifier.accuracy(file, test);
      double accCorr = Classifier.accuracy(corrFile, test);
      double accL1 = Classifier.accuracy(l1File, test);
      System.out.printf("%s, 50%% of the hidden neurons removed (10,000 test images): logit MSE correlation %.4f vs "
          + "L1 %.4f; accuracy dense %.4f, correlation %.4f, L1 %.4f; parameters %d -> %d; file %d -> %d B; %s%n",
          net, errCorr, errL1, accDense, accCorr, accL1, OnnxModels.summarize(original).parameterCount(), paramsCorr,
          Files.size(file), Files.size(corrFile), corr.steps().getFirst().summary());
      assertThat(errCorr).isLessThan(errL1);
      assertThat(accCorr).isGreaterThan(accL1);
      assertThat(Files.size(corrFile)).isLessThan(Files.size(file) * 6 / 10);
    }
  }

  @Test
  void aLayerWhoseActivationIsNotReadByOneLinearLayerIsRefusedWithTheReason() {
    // a feeds a Softmax: no linear consumer to fold into.
    ModelProto m = OnnxGraphBuilder.opset(13)
        .input("x", -1, 4)
        .initializer("W", randomFloats(1, 4 * 6, 1f), 4, 6)
        .initializer("V", randomFloats(2, 6 * 3, 1f), 6, 3)
        .matMul("x", "W", "h")
        .node("Softmax", List.of("h"), List.of("s"), OnnxGraphBuilder.intAttr("axis", -1))
        .matMul("s", "V", "y")
        .output("y")
        .build();
    PipelineContext ctx = new PipelineContext(normal("x", 32, 4, 1), dir, 32, 32, 1);
    PruneSpec spec = new PruneSpec(PruneSpec.CORRELATION, 0.5, null, PruneSpec.Scope.LAYER, List.of("W"), List.of());
    assertThatThrownBy(() -> OnnxPipeline.run(m, List.of(spec), ctx, Progress.NONE))
        .isInstanceOf(CompressionException.class)
        .hasMessageContaining("correlation pruning cannot remove neurons of 'W'")
        .hasMessageContaining("Softmax");
    assertThatThrownBy(() -> OnnxPipeline.run(m, List.of(spec), Progress.NONE))
        .isInstanceOf(CompressionException.class)
        .hasMessageContaining("calibrationDatasetId");
    assertThat(SpecValidator.validate(List.of(spec), OnnxModels.summarize(m), false))
        .extracting(Violation::field).containsExactly("calibrationDatasetId");
  }

  static double meanSquaredError(float[][] a, float[][] b) {
    double sum = 0;
    long n = 0;
    for (int i = 0; i < a.length; i++) {
      for (int k = 0; k < a[i].length; k++) {
        double d = a[i][k] - b[i][k];
        sum += d * d;
        n++;
      }
    }
    return sum / n;
  }

  /** [rows, cols] -> [cols, rows]. */
  static float[] transpose(float[] w, int rows, int cols) {
    float[] t = new float[w.length];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        t[c * rows + r] = w[r * cols + c];
      }
    }
    return t;
  }
}
