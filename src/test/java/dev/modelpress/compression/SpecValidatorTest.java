package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.PruneSpec.Scope;
import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.OnnxModels;
import java.util.List;
import org.junit.jupiter.api.Test;

class SpecValidatorTest {

  static final ModelSummary MLP = OnnxModels.summarize(Models.mlp(13));

  static List<Violation> validate(StepSpec... steps) {
    return SpecValidator.validate(List.of(steps), MLP);
  }

  static PruneSpec prune(Double sparsity, Double threshold) {
    return new PruneSpec("magnitude", sparsity, threshold, Scope.LAYER, List.of(), List.of());
  }

  @Test
  void acceptsValidSteps() {
    assertThat(validate(PruneSpec.global(0.5), QuantizeSpec.int8(true, Granularity.CHANNEL))).isEmpty();
    assertThat(validate(prune(0.0, null), prune(null, 0.0))).isEmpty();
  }

  @Test
  void defaultSelectionTakesWeightMatricesNotBiases() {
    assertThat(TensorSelector.select(MLP.tensors(), List.of(), List.of()))
        .extracting(TensorInfo::name).containsExactly("W1", "W2", "W3");
  }

  @Test
  void rejectsSparsityOutsideZeroToOne() {
    assertThat(validate(prune(1.0, null)))
        .containsExactly(new Violation("steps[0].sparsity", "must be at least 0 and below 1 (got 1.0)"));
    assertThat(validate(PruneSpec.layer(0.5), prune(-0.1, null)))
        .containsExactly(new Violation("steps[1].sparsity", "must be at least 0 and below 1 (got -0.1)"));
    assertThat(validate(prune(Double.NaN, null))).extracting(Violation::field).containsExactly("steps[0].sparsity");
  }

  @Test
  void requiresExactlyOneOfSparsityAndThreshold() {
    assertThat(validate(prune(0.5, 0.1)))
        .containsExactly(new Violation("steps[0]", "give either sparsity or threshold, not both"));
    assertThat(validate(prune(null, null)))
        .containsExactly(new Violation("steps[0].sparsity", "either sparsity or threshold is required"));
  }

  @Test
  void rejectsNegativeOrInfiniteThreshold() {
    assertThat(validate(prune(null, -1.0)))
        .containsExactly(new Violation("steps[0].threshold", "must be a finite number at least 0 (got -1.0)"));
    assertThat(validate(prune(null, Double.POSITIVE_INFINITY))).extracting(Violation::field)
        .containsExactly("steps[0].threshold");
  }

  @Test
  void rejectsUnknownPruningMethod() {
    assertThat(validate(new PruneSpec("random", 0.5, null, null, null, null)))
        .containsExactly(new Violation("steps[0].method", "unknown pruning method 'random'; supported: magnitude, nm, structured, wanda, sparsegpt, correlation"));
  }

  @Test
  void rejectsBitsOutsideOneTwoFourEight() {
    assertThat(validate(PruneSpec.layer(0.5), new QuantizeSpec(4, true, Granularity.CHANNEL, null, null))).isEmpty();
    assertThat(validate(PruneSpec.layer(0.5), new QuantizeSpec(3, true, Granularity.CHANNEL, null, null)))
        .containsExactly(new Violation("steps[1].weights.bits", "must be 1 (binary), 2, 4 or 8 (got 3)"));
  }

  @Test
  void rejectsInvalidRegexWithItsIndex() {
    List<Violation> v = validate(new PruneSpec(null, 0.5, null, null, List.of("W1", "W[", "W3"), null));
    assertThat(v).hasSize(1);
    assertThat(v.get(0).field()).isEqualTo("steps[0].include[1]");
    assertThat(v.get(0).message()).startsWith("'W[' is not a valid regular expression: Unclosed character class");
  }

  @Test
  void rejectsPatternsThatMatchNoTensor() {
    List<Violation> v = validate(new QuantizeSpec(8, true, Granularity.TENSOR, List.of("W1", "W"), List.of("W1", "x.*")));
    assertThat(v).extracting(Violation::field).containsExactly("steps[0].include[1]", "steps[0].exclude[1]", "steps[0]");
    assertThat(v.get(0).message())
        .isEqualTo("'W' matches no floating-point tensor of the model; patterns must match the whole tensor name "
            + "(e.g. 'W1')");
    assertThat(v.get(2).message()).isEqualTo("selects no tensor: every included tensor is excluded");
  }

  @Test
  void rejectsStepThatSelectsNothingByDefault() {
    ModelSummary onlyBias = OnnxModels.summarize(dev.modelpress.testing.OnnxGraphBuilder.opset(13)
        .input("x", 4).initializer("b", new float[4], 4).add("x", "b", "y").output("y").build());
    assertThat(SpecValidator.validate(List.of(PruneSpec.layer(0.5)), onlyBias))
        .extracting(Violation::field).containsExactly("steps[0]");
    assertThat(SpecValidator.validate(List.of(PruneSpec.layer(0.5)), onlyBias).get(0).message())
        .startsWith("selects no tensor: the model has no floating-point weight of rank >= 2");
  }

  @Test
  void rejectsPerChannelQuantizationOfScalar() {
    ModelSummary withScalar = OnnxModels.summarize(dev.modelpress.testing.OnnxGraphBuilder.opset(13)
        .input("x", 4).initializer("s", new float[] {2f}).node("Mul", List.of("x", "s"), List.of("y"))
        .output("y").build());
    assertThat(SpecValidator.validate(
        List.of(new QuantizeSpec(8, true, Granularity.CHANNEL, List.of("s"), List.of())), withScalar))
        .containsExactly(new Violation("steps[0].granularity",
            "tensor 's' is a scalar and has no channel axis; use granularity tensor or exclude it"));
  }

  @Test
  void rejectsStepsAfterQuantize() {
    assertThat(validate(QuantizeSpec.int8(true, Granularity.CHANNEL), PruneSpec.layer(0.5)))
        .extracting(Violation::field).containsExactly("steps[1]");
  }

  @Test
  void rejectsTypesAStepCannotHandle() {
    ModelSummary fp16 = new ModelSummary("onnx", 8,
        List.of(new TensorInfo("H", "FLOAT16", List.of(2L, 4L), List.of("MatMul:1"))),
        List.of(), List.of(), java.util.Map.of("", 13L), 8, null, java.util.Map.of());
    assertThat(SpecValidator.validate(List.of(PruneSpec.layer(0.5)), fp16)).isEmpty();
    // Integer codes are taken from FLOAT16 weights too (decoded back to FLOAT16); BFLOAT16 is not read.
    assertThat(SpecValidator.validate(List.of(QuantizeSpec.int8(true, Granularity.CHANNEL)), fp16)).isEmpty();
    ModelSummary bf16 = new ModelSummary("onnx", 8,
        List.of(new TensorInfo("H", "BFLOAT16", List.of(2L, 4L), List.of("MatMul:1"))),
        List.of(), List.of(), java.util.Map.of("", 13L), 8, null, java.util.Map.of());
    assertThat(SpecValidator.validate(List.of(QuantizeSpec.int8(true, Granularity.CHANNEL)), bf16))
        .containsExactly(new Violation("steps[0]",
            "tensor 'H' is BFLOAT16; quantize supports FLOAT and FLOAT16 tensors only so far (exclude it)"));
  }

  @Test
  void rejectsEmptyStepList() {
    assertThat(SpecValidator.validate(List.of(), MLP)).containsExactly(new Violation("steps", "at least one step is required"));
  }
}
