package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class MagnitudePrunerTest {

  @TempDir Path dir;

  static final List<String> WEIGHTS = List.of("W1", "W2", "W3");

  @Test
  void layerScopeReachesExactTargetSparsityPerTensor() {
    ModelProto m = Models.mlp(13);
    PipelineResult r = OnnxPipeline.run(m, List.of(Models.weights(PruneSpec.layer(0.37))), Progress.NONE);
    for (String name : WEIGHTS) {
      float[] before = Models.floats(m, name);
      float[] after = Models.floats(r.model(), name);
      int target = (int) Math.floor(0.37 * before.length);
      assertThat(Models.zeros(after)).as(name).isEqualTo(target);
      // The kept weights are unchanged and each pruned one is no larger than any kept one.
      float maxPruned = 0;
      float minKept = Float.MAX_VALUE;
      for (int i = 0; i < before.length; i++) {
        if (after[i] == 0f) {
          maxPruned = Math.max(maxPruned, Math.abs(before[i]));
        } else {
          assertThat(after[i]).isEqualTo(before[i]);
          minKept = Math.min(minKept, Math.abs(before[i]));
        }
      }
      assertThat(maxPruned).as(name).isLessThanOrEqualTo(minKept);
    }
    assertThat(Models.floats(r.model(), "b2")).isEqualTo(Models.floats(m, "b2"));
    TensorReport w1 = r.steps().get(0).tensors().get(0);
    assertThat(w1.name()).isEqualTo("W1");
    assertThat(w1.sparsityBefore()).isZero();
    assertThat(w1.sparsityAfter()).isEqualTo(473 / 1280.0);
    assertThat(w1.bytesAfter()).isEqualTo(w1.bytesBefore()).isEqualTo(1280 * 4);
    assertThat(w1.sqnrDb()).isPositive();
    assertThat(w1.bits()).isNull();
  }

  @Test
  void layerScopeWithTiesZeroesExactlyTheTargetCount() {
    float[] w1 = new float[32 * 40];
    java.util.Arrays.fill(w1, 0.5f);
    for (int i = 0; i < 100; i++) {
      w1[i * 7] = -0.25f;
    }
    w1[3] = 0f;
    ModelProto m = Models.mlp(13, w1,
        OnnxGraphBuilder.randomFloats(2, 40 * 24, 1f), OnnxGraphBuilder.randomFloats(3, 24 * 16, 1f));
    float[] after = Models.floats(OnnxPipeline.run(m, List.of(Models.weights(PruneSpec.layer(0.5))), Progress.NONE).model(), "W1");
    assertThat(Models.zeros(after)).isEqualTo(640);
    for (int i = 0; i < 100; i++) {
      assertThat(after[i * 7]).isZero();
    }
  }

  @Test
  void globalScopeUsesOneThresholdAcrossTensors() {
    ModelProto m = Models.mlp(13);
    PipelineResult r = OnnxPipeline.run(m, List.of(Models.weights(PruneSpec.global(0.6))), Progress.NONE);
    int total = 0;
    int zeros = 0;
    float maxPruned = 0;
    float minKept = Float.MAX_VALUE;
    for (String name : WEIGHTS) {
      float[] before = Models.floats(m, name);
      float[] after = Models.floats(r.model(), name);
      total += before.length;
      zeros += Models.zeros(after);
      for (int i = 0; i < before.length; i++) {
        if (after[i] == 0f) {
          maxPruned = Math.max(maxPruned, Math.abs(before[i]));
        } else {
          minKept = Math.min(minKept, Math.abs(before[i]));
        }
      }
    }
    assertThat(zeros).isEqualTo((int) Math.floor(0.6 * total));
    assertThat(maxPruned).isLessThanOrEqualTo(minKept);
    // W2 (|w| < 0.1) is almost entirely pruned, W3 (|w| < 5) barely: one threshold, not per layer.
    List<TensorReport> t = r.steps().get(0).tensors();
    assertThat(t.get(1).sparsityAfter()).isEqualTo(1.0);
    assertThat(t.get(2).sparsityAfter()).isLessThan(0.2);
    assertThat(r.steps().get(0).summary()).contains("of 2624 weights are now zero");
  }

  @Test
  void thresholdModeZeroesExactlyTheWeightsAtOrBelowIt() {
    ModelProto m = Models.mlp(13);
    float t = Math.abs(Models.floats(m, "W1")[17]);
    PipelineResult r = OnnxPipeline.run(m, List.of(Models.weights(PruneSpec.belowThreshold(t))), Progress.NONE);
    for (String name : WEIGHTS) {
      float[] before = Models.floats(m, name);
      float[] after = Models.floats(r.model(), name);
      for (int i = 0; i < before.length; i++) {
        assertThat(after[i]).isEqualTo(Math.abs(before[i]) <= t ? 0f : before[i]);
      }
    }
    assertThat(Models.floats(r.model(), "W1")[17]).isZero();
  }

  @Test
  void includeAndExcludeAreWholeNameRegexes() {
    ModelProto m = Models.mlp(13);
    PruneSpec spec = new PruneSpec("magnitude", 0.5, null, PruneSpec.Scope.LAYER, List.of("W.", "b2"), List.of("W2"));
    PipelineResult r = OnnxPipeline.run(m, List.of(spec), Progress.NONE);
    assertThat(r.steps().get(0).tensors()).extracting(TensorReport::name).containsExactly("W1", "b2", "W3");
    assertThat(Models.floats(r.model(), "W2")).isEqualTo(Models.floats(m, "W2"));
    assertThat(Models.zeros(Models.floats(r.model(), "b2"))).isEqualTo(12);
  }

  @Test
  void nanWeightFailsNamingTheTensor() {
    float[] w2 = OnnxGraphBuilder.randomFloats(2, 40 * 24, 1f);
    w2[5] = Float.NaN;
    w2[6] = Float.POSITIVE_INFINITY;
    ModelProto m = Models.mlp(13, OnnxGraphBuilder.randomFloats(1, 32 * 40, 1f), w2,
        OnnxGraphBuilder.randomFloats(3, 24 * 16, 1f));
    for (PruneSpec spec : List.of(Models.weights(PruneSpec.layer(0.5)), Models.weights(PruneSpec.global(0.5)))) {
      assertThatThrownBy(() -> OnnxPipeline.run(m, List.of(spec), Progress.NONE))
          .isInstanceOf(CompressionException.class)
          .hasMessage("tensor 'W2' contains 2 NaN or infinite values; it cannot be compressed");
    }
  }

  @ParameterizedTest(name = "opset {0} symmetric={1} {2}")
  @CsvSource({"13,true,CHANNEL", "13,false,CHANNEL", "11,true,CHANNEL", "11,false,CHANNEL",
      "13,false,TENSOR", "11,false,TENSOR"})
  void pruningThenQuantizingKeepsEveryZeroExactlyZero(long opset, boolean symmetric, Granularity g) {
    ModelProto m = OnnxGraphBuilder.opset(opset).input("x", 32, 32)
        .initializer("W", OnnxGraphBuilder.randomFloats(21, 32 * 24, 1f), 32, 24)
        .matMul("x", "W", "y").output("y").build();
    PipelineResult r = OnnxPipeline.run(m,
        List.of(Models.weights(PruneSpec.layer(0.5)), new QuantizeSpec(8, symmetric, g, List.of(), List.of())), Progress.NONE);
    float[] pruned = Models.floats(OnnxPipeline.run(m, List.of(Models.weights(PruneSpec.layer(0.5))), Progress.NONE).model(), "W");
    assertThat(Models.zeros(pruned)).isEqualTo(384);

    // x = identity makes y the dequantized weight, computed by ONNX Runtime as the graph says.
    float[] eye = new float[32 * 32];
    for (int i = 0; i < 32; i++) {
      eye[i * 32 + i] = 1f;
    }
    float[] decoded;
    try (OrtRunner ort = OrtRunner.unfused(OnnxGraphBuilder.write(r.model(), dir))) {
      decoded = ort.run("y", "x", eye, 32, 32);
    }
    int exactZeros = 0;
    for (int i = 0; i < pruned.length; i++) {
      if (pruned[i] == 0f) {
        assertThat(decoded[i]).as("element %d", i).isEqualTo(0f);
        exactZeros++;
      }
    }
    assertThat(exactZeros).isEqualTo(384);
    TensorReport q = r.steps().get(1).tensors().get(0);
    assertThat(q.sparsityBefore()).isEqualTo(0.5);
    assertThat(q.sparsityAfter()).isGreaterThanOrEqualTo(0.5);
  }

  @Test
  void pruningFloat16KeepsTheTypeAndReachesTheTarget() {
    dev.modelpress.model.onnx.proto.OnnxProto.TensorProto half = dev.modelpress.format.onnx.OnnxTensors.withFloats(
        dev.modelpress.model.onnx.proto.OnnxProto.TensorProto.newBuilder().setName("W")
            .setDataType(dev.modelpress.model.onnx.proto.OnnxProto.TensorProto.DataType.FLOAT16_VALUE)
            .addDims(16).addDims(8).build(),
        OnnxGraphBuilder.randomFloats(5, 128, 1f));
    ModelProto m = OnnxGraphBuilder.opset(13)
        .input("x", dev.modelpress.model.onnx.proto.OnnxProto.TensorProto.DataType.FLOAT16, 2, 16)
        .initializer(half).matMul("x", "W", "y")
        .output("y", dev.modelpress.model.onnx.proto.OnnxProto.TensorProto.DataType.FLOAT16).build();
    ModelProto pruned = OnnxPipeline.run(m, List.of(Models.weights(PruneSpec.layer(0.25))), Progress.NONE).model();
    assertThat(Models.initializer(pruned, "W").getDataType()).isEqualTo(half.getDataType());
    assertThat(Models.initializer(pruned, "W").getRawData().size()).isEqualTo(256);
    assertThat(Models.zeros(Models.floats(pruned, "W"))).isEqualTo(32);
  }
}
