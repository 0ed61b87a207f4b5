package dev.modelpress.compression;

import static dev.modelpress.testing.OnnxGraphBuilder.intAttr;
import static dev.modelpress.testing.OnnxGraphBuilder.intsAttr;
import static dev.modelpress.testing.OnnxGraphBuilder.randomFloats;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StructuredPrunerTest {

  @TempDir Path dir;

  static final long[] INPUT = {2, 3, 8, 8};

  /**
   * x[2,3,8,8] -> Conv W1[8,3,3,3]+b1 -> BatchNormalization -> Relu -> MaxPool 2x2 -> Conv
   * W2[16,8,3,3]+b2 -> Relu -> Flatten -> Gemm Wf[256,10]+bf -> y.
   */
  static ModelProto cnn() {
    return OnnxGraphBuilder.opset(13)
        .input("x", INPUT)
        .initializer("W1", randomFloats(1, 8 * 3 * 3 * 3, 0.5f), 8, 3, 3, 3)
        .initializer("b1", randomFloats(2, 8, 0.1f), 8)
        .initializer("bn_scale", positive(3, 8), 8)
        .initializer("bn_bias", randomFloats(4, 8, 0.2f), 8)
        .initializer("bn_mean", randomFloats(5, 8, 0.1f), 8)
        .initializer("bn_var", positive(6, 8), 8)
        .initializer("W2", randomFloats(7, 16 * 8 * 3 * 3, 0.3f), 16, 8, 3, 3)
        .initializer("b2", randomFloats(8, 16, 0.1f), 16)
        .initializer("Wf", randomFloats(9, 256 * 10, 0.2f), 256, 10)
        .initializer("bf", randomFloats(10, 10, 0.1f), 10)
        .conv("x", "W1", "b1", "c1", 1)
        .node("BatchNormalization", List.of("c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"), List.of("n1"),
            OnnxGraphBuilder.floatAttr("epsilon", 1e-5f))
        .relu("n1", "r1")
        .node("MaxPool", List.of("r1"), List.of("p1"), intsAttr("kernel_shape", 2, 2), intsAttr("strides", 2, 2))
        .conv("p1", "W2", "b2", "c2", 1)
        .relu("c2", "r2")
        .node("Flatten", List.of("r2"), List.of("f"), intAttr("axis", 1))
        .gemm("f", "Wf", "bf", "y", false)
        .output("y")
        .build();
  }

  static float[] positive(long seed, int n) {
    float[] a = randomFloats(seed, n, 0.5f);
    for (int i = 0; i < n; i++) {
      a[i] = 0.75f + a[i];
    }
    return a;
  }

  @Test
  void halfTheChannelsOfEachConvAreCutOutAndTheSmallerModelComputesExactlyTheZeroedOriginal() throws Exception {
    ModelProto original = cnn();
    PipelineResult r = OnnxPipeline.run(original,
        List.of(PruneSpec.structured(0.5, PruneSpec.Criterion.L1, PruneSpec.Target.CHANNELS)), Progress.NONE);
    ModelProto pruned = r.model();

    assertThat(Models.initializer(pruned, "W1").getDimsList()).containsExactly(4L, 3L, 3L, 3L);
    assertThat(Models.initializer(pruned, "b1").getDimsList()).containsExactly(4L);
    for (String bn : List.of("bn_scale", "bn_bias", "bn_mean", "bn_var")) {
      assertThat(Models.initializer(pruned, bn).getDimsList()).as(bn).containsExactly(4L);
    }
    assertThat(Models.initializer(pruned, "W2").getDimsList()).containsExactly(8L, 4L, 3L, 3L);
    assertThat(Models.initializer(pruned, "b2").getDimsList()).containsExactly(8L);
    // Flatten: each of the 8 kept channels is a block of 4x4 = 16 rows of the classifier.
    assertThat(Models.initializer(pruned, "Wf").getDimsList()).containsExactly(128L, 10L);

    long convBefore = params(original, "W1", "b1", "W2", "b2");
    long convAfter = params(pruned, "W1", "b1", "W2", "b2");
    long modelBefore = OnnxModels.summarize(original).parameterCount();
    long modelAfter = OnnxModels.summarize(pruned).parameterCount();
    Path originalFile = OnnxGraphBuilder.write(original, dir);
    Path prunedFile = OnnxGraphBuilder.write(pruned, dir);
    System.out.printf("structured 50%%: conv parameters %d -> %d (%.3f), model %d -> %d, file %d -> %d bytes%n",
        convBefore, convAfter, (double) convAfter / convBefore, modelBefore, modelAfter,
        Files.size(originalFile), Files.size(prunedFile));
    // conv1 keeps 4 of 8 filters; conv2 keeps 8 of 16 filters over 4 of 8 input channels (a quarter).
    assertThat(convAfter).isEqualTo(4 * 27 + 4 + 8 * 4 * 9 + 8);
    assertThat(modelAfter).isLessThan(modelBefore / 2 + 1);
    assertThat(Files.size(prunedFile)).isLessThan(Files.size(originalFile) * 6 / 10);

    // Which channels went: recover them from the rows kept, then check they are the lowest-L1 ones.
    int[] kept1 = keptRows(Models.floats(original, "W1"), Models.floats(pruned, "W1"), 27);
    float[] w2Sliced = sliceInputs(Models.floats(original, "W2"), 16, 8, 9, kept1);
    int[] kept2 = keptRows(w2Sliced, Models.floats(pruned, "W2"), kept1.length * 9);
    assertThat(kept1).hasSize(4);
    assertThat(kept2).hasSize(8);
    assertLowestNormsRemoved(Models.floats(original, "W1"), 27, kept1);
    assertLowestNormsRemoved(w2Sliced, kept1.length * 9, kept2);

    // Reference: the ORIGINAL graph with the removed channels' filters, biases and every weight
    // that reads them set to zero.
    ModelProto reference = zeroRemoved(original, kept1, kept2);
    float[] x = randomFloats(11, (int) (2 * 3 * 8 * 8), 1f);
    float[] expected;
    float[] actual;
    try (OrtRunner ref = new OrtRunner(OnnxGraphBuilder.write(reference, dir));
        OrtRunner cut = new OrtRunner(prunedFile)) {
      expected = ref.run("y", "x", x, INPUT);
      actual = cut.run("y", "x", x, INPUT);
    }
    double maxDiff = 0;
    for (int i = 0; i < expected.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(expected[i] - actual[i]));
    }
    System.out.printf("structured 50%%: max |pruned - zeroed original| = %.3g over %d outputs%n", maxDiff, expected.length);
    assertThat(actual).hasSize(20);
    assertThat(maxDiff).isLessThan(1e-5);

    StepReport step = r.steps().getFirst();
    assertThat(step.details()).containsEntry("modelParametersBefore", modelBefore)
        .containsEntry("modelParametersAfter", modelAfter);
    assertThat((List<?>) step.details().get("layers")).hasSize(2);
    assertThat(step.summary()).contains("2 layers");
  }

  @Test
  void l2CriterionRanksChannelsBySquaredNorm() {
    // Channel 0 has one large weight (high L2, low L1); channel 1 many medium ones (high L1).
    float[] w = new float[2 * 4];
    w[0] = 3f;
    Arrays.fill(w, 4, 8, 1f);
    double[] l1 = StructuredPruner.norms(w, List.of(2L, 4L), 0, PruneSpec.Criterion.L1);
    float[] l2 = toFloat(StructuredPruner.norms(w, List.of(2L, 4L), 0, PruneSpec.Criterion.L2));
    assertThat(l1[0]).isEqualTo(3.0);
    assertThat(l1[1]).isEqualTo(4.0);
    assertThat(l2[0]).isEqualTo(3f);
    assertThat(l2[1]).isEqualTo(2f);
  }

  @Test
  void residualAddIsRefusedWithTheReason() {
    // x -> Conv A -> Relu -> a; a -> Conv B -> b; Add(b, a) -> y2 -> Relu -> Conv C -> y.
    ModelProto m = OnnxGraphBuilder.opset(13)
        .input("x", 1, 4, 6, 6)
        .initializer("A", randomFloats(1, 8 * 4 * 9, 0.3f), 8, 4, 3, 3)
        .initializer("B", randomFloats(2, 8 * 8 * 9, 0.3f), 8, 8, 3, 3)
        .initializer("C", randomFloats(3, 2 * 8 * 9, 0.3f), 2, 8, 3, 3)
        .conv("x", "A", null, "ca", 1)
        .relu("ca", "a")
        .conv("a", "B", null, "b", 1)
        .add("b", "a", "s")
        .relu("s", "rs")
        .conv("rs", "C", null, "y", 1)
        .output("y")
        .build();
    PruneSpec explicit = PruneSpec.structured(0.5, PruneSpec.Criterion.L1, PruneSpec.Target.FILTERS)
        .withSelection(List.of("A"), List.of());
    assertThatThrownBy(() -> OnnxPipeline.run(m, List.of(explicit), Progress.NONE))
        .isInstanceOf(CompressionException.class)
        .hasMessageContaining("structured pruning cannot remove channels of 'A'")
        .hasMessageContaining("Add node")
        .hasMessageContaining("residual branch keeps every channel");
    // By default the refused layers are skipped; with nothing left the step fails naming each.
    assertThatThrownBy(() -> OnnxPipeline.run(m,
        List.of(PruneSpec.structured(0.5, PruneSpec.Criterion.L1, PruneSpec.Target.FILTERS)), Progress.NONE))
        .isInstanceOf(CompressionException.class)
        .hasMessageContaining("removed no channel")
        .hasMessageContaining("'A':")
        .hasMessageContaining("'B':");
  }

  @Test
  void channelsThatAreAGraphOutputAndReshapesThatMixChannelsAreRefused() {
    ModelProto toOutput = OnnxGraphBuilder.opset(13)
        .input("x", 1, 4)
        .initializer("W", randomFloats(1, 4 * 6, 1f), 4, 6)
        .matMul("x", "W", "h")
        .relu("h", "y")
        .output("y")
        .build();
    PruneSpec all = PruneSpec.structured(0.5, PruneSpec.Criterion.L1, PruneSpec.Target.NEURONS)
        .withSelection(List.of("W"), List.of());
    assertThatThrownBy(() -> OnnxPipeline.run(toOutput, List.of(all), Progress.NONE))
        .hasMessageContaining("reach the graph output 'y'");

    ModelProto transposed = OnnxGraphBuilder.opset(13)
        .input("x", 1, 4)
        .initializer("W", randomFloats(1, 4 * 6, 1f), 4, 6)
        .initializer("V", randomFloats(2, 6 * 3, 1f), 6, 3)
        .matMul("x", "W", "h")
        .node("Softmax", List.of("h"), List.of("s"), intAttr("axis", -1))
        .matMul("s", "V", "y")
        .output("y")
        .build();
    assertThatThrownBy(() -> OnnxPipeline.run(transposed, List.of(all), Progress.NONE))
        .hasMessageContaining("cannot follow channels through Softmax");
  }

  @Test
  void concatAlongChannelsKeepsTheOtherBranchInPlace() throws Exception {
    // Two convs concatenated on channels, then a 1x1 conv reads all 12.
    ModelProto m = OnnxGraphBuilder.opset(13)
        .input("x", 1, 3, 5, 5)
        .initializer("P", randomFloats(1, 4 * 3 * 9, 0.4f), 4, 3, 3, 3)
        .initializer("Q", randomFloats(2, 8 * 3 * 9, 0.4f), 8, 3, 3, 3)
        .initializer("R", randomFloats(3, 2 * 12, 0.4f), 2, 12, 1, 1)
        .conv("x", "P", null, "p", 1)
        .conv("x", "Q", null, "q", 1)
        .node("Concat", List.of("p", "q"), List.of("pq"), intAttr("axis", 1))
        .relu("pq", "r")
        .conv("r", "R", null, "y", 0)
        .output("y")
        .build();
    PruneSpec onlyQ = PruneSpec.structured(0.5, PruneSpec.Criterion.L1, PruneSpec.Target.FILTERS)
        .withSelection(List.of("Q"), List.of());
    ModelProto pruned = OnnxPipeline.run(m, List.of(onlyQ), Progress.NONE).model();
    assertThat(Models.initializer(pruned, "Q").getDimsList()).containsExactly(4L, 3L, 3L, 3L);
    assertThat(Models.initializer(pruned, "R").getDimsList()).containsExactly(2L, 8L, 1L, 1L);
    // R keeps its first 4 input channels (from P) untouched.
    float[] r0 = Models.floats(m, "R");
    float[] r1 = Models.floats(pruned, "R");
    for (int o = 0; o < 2; o++) {
      for (int c = 0; c < 4; c++) {
        assertThat(r1[o * 8 + c]).isEqualTo(r0[o * 12 + c]);
      }
    }
    int[] keptQ = keptRows(Models.floats(m, "Q"), Models.floats(pruned, "Q"), 27);
    ModelProto reference = zeroConvFilters(m, "Q", 8, 27, keptQ, "R", 2, 12, 1, 4);
    float[] x = randomFloats(5, 75, 1f);
    try (OrtRunner a = new OrtRunner(OnnxGraphBuilder.write(reference, dir));
        OrtRunner b = new OrtRunner(OnnxGraphBuilder.write(pruned, dir))) {
      float[] expected = a.run("y", "x", x, 1, 3, 5, 5);
      float[] actual = b.run("y", "x", x, 1, 3, 5, 5);
      for (int i = 0; i < expected.length; i++) {
        assertThat(actual[i]).isCloseTo(expected[i], org.assertj.core.data.Offset.offset(1e-5f));
      }
    }
  }

  @Test
  void aJoinOfTwoOperandsCarryingTheSameChannelsIsFollowedAndOneWithAResidualIsNot() throws Exception {
    // SiLU written out: h = x·W1 + b1; s = h · Sigmoid(h) (Mul of two computed tensors); y = s·W2.
    ModelProto m = OnnxGraphBuilder.opset(13)
        .input("x", 2, 6)
        .initializer("W1", randomFloats(1, 6 * 8, 1f), 6, 8)
        .initializer("b1", randomFloats(2, 8, 0.2f), 8)
        .initializer("W2", randomFloats(3, 8 * 3, 1f), 8, 3)
        .matMul("x", "W1", "h0")
        .add("h0", "b1", "h")
        .node("Sigmoid", List.of("h"), List.of("g"))
        .node("Mul", List.of("h", "g"), List.of("s"))
        .matMul("s", "W2", "y")
        .output("y")
        .build();
    PruneSpec w1 = PruneSpec.structured(0.5, PruneSpec.Criterion.L1, PruneSpec.Target.NEURONS)
        .withSelection(List.of("W1"), List.of());
    ModelProto pruned = OnnxPipeline.run(m, List.of(w1), Progress.NONE).model();
    assertThat(Models.initializer(pruned, "W1").getDimsList()).containsExactly(6L, 4L);
    assertThat(Models.initializer(pruned, "W2").getDimsList()).containsExactly(4L, 3L);
    int[] kept = keptRows(RedundancyPrunerTest.transpose(Models.floats(m, "W1"), 6, 8),
        RedundancyPrunerTest.transpose(Models.floats(pruned, "W1"), 6, 4), 6);
    float[] w2 = Models.floats(m, "W2");
    boolean[] keep = mask(8, kept);
    for (int k = 0; k < 8; k++) {
      if (!keep[k]) {
        Arrays.fill(w2, k * 3, (k + 1) * 3, 0f);
      }
    }
    float[] x = randomFloats(4, 12, 1f);
    try (OrtRunner a = new OrtRunner(OnnxGraphBuilder.write(replace(m, Map.of("W2", w2)), dir));
        OrtRunner b = new OrtRunner(OnnxGraphBuilder.write(pruned, dir))) {
      float[] expected = a.run("y", "x", x, 2, 6);
      float[] actual = b.run("y", "x", x, 2, 6);
      for (int i = 0; i < expected.length; i++) {
        assertThat(actual[i]).isCloseTo(expected[i], org.assertj.core.data.Offset.offset(1e-5f));
      }
    }

    // h · x2 where x2 comes from another layer: that operand keeps every channel.
    ModelProto residual = OnnxGraphBuilder.opset(13)
        .input("x", 2, 6)
        .initializer("W1", randomFloats(1, 6 * 8, 1f), 6, 8)
        .initializer("V", randomFloats(5, 6 * 8, 1f), 6, 8)
        .initializer("W2", randomFloats(3, 8 * 3, 1f), 8, 3)
        .matMul("x", "W1", "h")
        .matMul("x", "V", "v")
        .node("Mul", List.of("h", "v"), List.of("s"))
        .matMul("s", "W2", "y")
        .output("y")
        .build();
    assertThatThrownBy(() -> OnnxPipeline.run(residual, List.of(w1), Progress.NONE))
        .isInstanceOf(CompressionException.class)
        .hasMessageContaining("combines the pruned channels with 'v', which is computed");
  }

  @Test
  void finalClassifierIsNotPrunedByDefault() {
    PipelineResult r = OnnxPipeline.run(cnn(), List.of(PruneSpec.layer(0.5)), Progress.NONE);
    assertThat(r.steps().getFirst().tensors()).extracting(TensorReport::name).containsExactly("W1", "W2");
    assertThat(Models.zeros(Models.floats(r.model(), "Wf"))).isZero();
  }

  // ---- helpers ----

  static long params(ModelProto m, String... names) {
    long n = 0;
    for (String name : names) {
      n += OnnxTensors.elementCount(Models.initializer(m, name).getDimsList());
    }
    return n;
  }

  private static float[] toFloat(double[] d) {
    float[] f = new float[d.length];
    for (int i = 0; i < d.length; i++) {
      f[i] = (float) d[i];
    }
    return f;
  }

  /** Indices of the original rows (of {@code width} elements) that appear, in order, in the pruned tensor. */
  static int[] keptRows(float[] original, float[] pruned, int width) {
    List<Integer> kept = new ArrayList<>();
    int rows = original.length / width;
    int next = 0;
    for (int r = 0; r < rows && next < pruned.length / width; r++) {
      if (Arrays.equals(original, r * width, (r + 1) * width, pruned, next * width, (next + 1) * width)) {
        kept.add(r);
        next++;
      }
    }
    assertThat(next).as("every pruned row is an original row").isEqualTo(pruned.length / width);
    return kept.stream().mapToInt(Integer::intValue).toArray();
  }

  static float[] sliceInputs(float[] w, int out, int in, int spatial, int[] keptIn) {
    float[] s = new float[out * keptIn.length * spatial];
    for (int o = 0; o < out; o++) {
      for (int j = 0; j < keptIn.length; j++) {
        System.arraycopy(w, (o * in + keptIn[j]) * spatial, s, (o * keptIn.length + j) * spatial, spatial);
      }
    }
    return s;
  }

  static void assertLowestNormsRemoved(float[] w, int width, int[] kept) {
    double minKept = Double.MAX_VALUE;
    double maxRemoved = 0;
    for (int r = 0; r < w.length / width; r++) {
      double l1 = 0;
      for (int i = 0; i < width; i++) {
        l1 += Math.abs(w[r * width + i]);
      }
      final int row = r;
      if (Arrays.stream(kept).anyMatch(k -> k == row)) {
        minKept = Math.min(minKept, l1);
      } else {
        maxRemoved = Math.max(maxRemoved, l1);
      }
    }
    assertThat(maxRemoved).isLessThanOrEqualTo(minKept);
  }

  /** The CNN with conv1/conv2 channels outside kept1/kept2 zeroed in their producers and consumers. */
  static ModelProto zeroRemoved(ModelProto m, int[] kept1, int[] kept2) {
    boolean[] k1 = mask(8, kept1);
    boolean[] k2 = mask(16, kept2);
    float[] w1 = Models.floats(m, "W1");
    float[] b1 = Models.floats(m, "b1");
    float[] w2 = Models.floats(m, "W2");
    float[] b2 = Models.floats(m, "b2");
    float[] wf = Models.floats(m, "Wf");
    for (int o = 0; o < 8; o++) {
      if (!k1[o]) {
        Arrays.fill(w1, o * 27, (o + 1) * 27, 0f);
        b1[o] = 0;
        for (int p = 0; p < 16; p++) {
          Arrays.fill(w2, (p * 8 + o) * 9, (p * 8 + o + 1) * 9, 0f);
        }
      }
    }
    for (int p = 0; p < 16; p++) {
      if (!k2[p]) {
        Arrays.fill(w2, p * 72, (p + 1) * 72, 0f);
        b2[p] = 0;
        Arrays.fill(wf, p * 16 * 10, (p + 1) * 16 * 10, 0f);
      }
    }
    return replace(m, Map.of("W1", w1, "b1", b1, "W2", w2, "b2", b2, "Wf", wf));
  }

  static ModelProto zeroConvFilters(ModelProto m, String producer, int out, int width, int[] kept, String consumer,
      int consumerOut, int consumerIn, int spatial, int offset) {
    boolean[] k = mask(out, kept);
    float[] w = Models.floats(m, producer);
    float[] c = Models.floats(m, consumer);
    for (int o = 0; o < out; o++) {
      if (!k[o]) {
        Arrays.fill(w, o * width, (o + 1) * width, 0f);
        for (int p = 0; p < consumerOut; p++) {
          int at = (p * consumerIn + offset + o) * spatial;
          Arrays.fill(c, at, at + spatial, 0f);
        }
      }
    }
    return replace(m, Map.of(producer, w, consumer, c));
  }

  static boolean[] mask(int n, int[] kept) {
    boolean[] b = new boolean[n];
    for (int k : kept) {
      b[k] = true;
    }
    return b;
  }

  static ModelProto replace(ModelProto m, Map<String, float[]> values) {
    GraphProto.Builder g = m.getGraph().toBuilder();
    for (int i = 0; i < g.getInitializerCount(); i++) {
      TensorProto t = g.getInitializer(i);
      float[] v = values.get(t.getName());
      if (v != null) {
        g.setInitializer(i, OnnxTensors.withFloats(t, v));
      }
    }
    return m.toBuilder().setGraph(g).build();
  }
}
