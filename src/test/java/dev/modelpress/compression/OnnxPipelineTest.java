package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class OnnxPipelineTest {

  @Test
  void progressThatThrowsAfterSecondTensorCancelsAndLeavesInputUntouched() {
    ModelProto model = Models.mlp(13);
    byte[] before = model.toByteArray();
    List<String> seen = new ArrayList<>();
    Progress cancelAfterTwo = (step, steps, type, item, items, message) -> {
      seen.add(step + "/" + steps + " " + type + " " + item + "/" + items + " " + message);
      if (item == 2) {
        throw new CompressionCancelledException("cancelled by user");
      }
    };
    assertThatThrownBy(() -> OnnxPipeline.run(model,
        List.of(Models.weights(PruneSpec.layer(0.5)), QuantizeSpec.int8(true, Granularity.CHANNEL)), cancelAfterTwo))
        .isInstanceOf(CompressionCancelledException.class)
        .hasMessage("cancelled by user");
    assertThat(seen).containsExactly(
        "0/2 prune 0/3 pruning W1", "0/2 prune 1/3 pruning W2", "0/2 prune 2/3 pruning W3");
    assertThat(model.toByteArray()).isEqualTo(before);
  }

  @Test
  void reportsEveryStepAndTensorAndCountsProgressToTheEnd() {
    ModelProto model = Models.mlp(13);
    List<String> seen = new ArrayList<>();
    PipelineResult r = OnnxPipeline.run(model,
        List.of(Models.weights(PruneSpec.layer(0.5)), QuantizeSpec.int8(false, Granularity.CHANNEL)),
        (step, steps, type, item, items, message) -> seen.add(step + ":" + item + "/" + items));
    assertThat(seen).containsExactly("0:0/3", "0:1/3", "0:2/3", "0:3/3", "1:0/3", "1:1/3", "1:2/3", "1:3/3");
    assertThat(r.steps()).extracting(StepReport::type).containsExactly("prune", "quantize");
    TensorReport q = r.steps().get(1).tensors().get(0);
    assertThat(q.name()).isEqualTo("W1");
    assertThat(q.bits()).isEqualTo(8);
    assertThat(q.granularity()).isEqualTo("CHANNEL");
    // 1280 int8 codes + 40 float scales + 40 int8 zero points (DequantizeLinear at opset 13).
    assertThat(q.bytesBefore()).isEqualTo(5120);
    assertThat(q.bytesAfter()).isEqualTo(1280 + 160 + 40);
    assertThat(q.sqnrDb()).isGreaterThan(30);
    assertThat(r.steps().get(1).summary())
        .startsWith("int8 weight quantization (asymmetric, per channel) of 3 tensors: 10496 -> ");
    // The result is a new model; the input still has its float weights.
    assertThat(Models.hasInitializer(model, "W1")).isTrue();
    assertThat(Models.hasInitializer(r.model(), "W1")).isFalse();
  }

  @Test
  void pruningAnAlreadyZeroTensorReportsNoSqnrInsteadOfInfinity() {
    ModelProto model = Models.mlp(13, new float[32 * 40],
        dev.modelpress.testing.OnnxGraphBuilder.randomFloats(2, 960, 1f),
        dev.modelpress.testing.OnnxGraphBuilder.randomFloats(3, 384, 1f));
    TensorReport w1 = OnnxPipeline.run(model, List.of(Models.weights(PruneSpec.layer(0.5))), Progress.NONE)
        .steps().get(0).tensors().get(0);
    assertThat(w1.mse()).isZero();
    assertThat(w1.sqnrDb()).isNull();
    assertThat(w1.sparsityBefore()).isEqualTo(1.0);
  }

  @Test
  void stepThatSelectsNothingAtRunTimeFails() {
    assertThatThrownBy(() -> OnnxPipeline.run(Models.mlp(13),
        List.of(new PruneSpec(null, 0.5, null, null, List.of("nothing"), null)), Progress.NONE))
        .isInstanceOf(CompressionException.class)
        .hasMessage("step 0 (prune) selects no tensor");
  }
}
