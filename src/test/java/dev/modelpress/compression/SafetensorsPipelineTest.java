package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.safetensors.SafetensorsDtype;
import dev.modelpress.format.safetensors.SafetensorsFile;
import dev.modelpress.format.safetensors.SafetensorsWriter;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

class SafetensorsPipelineTest {

  private static final String UP = "model.layers.0.mlp.up_proj.weight";

  @TempDir Path dir;

  private final float[] up = OnnxGraphBuilder.randomFloats(1, 64 * 256, 0.5f);
  private final float[] embed = OnnxGraphBuilder.randomFloats(2, 100 * 64, 1f);
  private final float[] norm = OnnxGraphBuilder.randomFloats(3, 64, 1f);
  private final float[] head = OnnxGraphBuilder.randomFloats(4, 100 * 64, 1f);

  private Path checkpoint(SafetensorsDtype dtype) throws Exception {
    Path file = dir.resolve("model.safetensors");
    try (SafetensorsWriter w = SafetensorsWriter.create(file, List.of(
        new SafetensorsWriter.Tensor("model.embed_tokens.weight", dtype, List.of(100L, 64L)),
        new SafetensorsWriter.Tensor(UP, dtype, List.of(64L, 256L)),
        new SafetensorsWriter.Tensor("model.norm.weight", dtype, List.of(64L)),
        new SafetensorsWriter.Tensor("lm_head.weight", dtype, List.of(100L, 64L))), Map.of())) {
      w.write("model.embed_tokens.weight", SafetensorsPipeline.Floats.write(embed, dtype));
      w.write(UP, SafetensorsPipeline.Floats.write(up, dtype));
      w.write("model.norm.weight", SafetensorsPipeline.Floats.write(norm, dtype));
      w.write("lm_head.weight", SafetensorsPipeline.Floats.write(head, dtype));
    }
    return file;
  }

  @Test
  void int8PerChannelWritesCompressedTensorsPackQuantizedLayout() throws Exception {
    Path in = checkpoint(SafetensorsDtype.F32);
    Path out = dir.resolve("q.safetensors");
    SafetensorsPipeline.Result r = SafetensorsPipeline.run(in, out,
        List.of(QuantizeSpec.int8(true, QuantizeSpec.Granularity.CHANNEL)), Progress.NONE);

    assertThat(r.steps().getFirst().tensors()).extracting(TensorReport::name).containsExactly(UP);
    try (SafetensorsFile a = SafetensorsFile.open(in); SafetensorsFile q = SafetensorsFile.open(out)) {
      String p = "model.layers.0.mlp.up_proj.";
      assertThat(q.entry(p + "weight_packed").dtype()).isEqualTo(SafetensorsDtype.I32);
      // Four 8-bit codes per int32 word: 256 columns -> 64 words per row.
      assertThat(q.entry(p + "weight_packed").shape()).containsExactly(64L, 64L);
      assertThat(q.entry(p + "weight_scale").shape()).containsExactly(64L, 1L);
      assertThat(q.entries()).extracting(SafetensorsFile.Entry::name)
          .doesNotContain(UP, p + "weight_zero_point");
      ByteBuffer packed = q.tensorData(p + "weight_packed");
      float[] scales = SafetensorsPipeline.Floats.read(q.tensorData(p + "weight_scale"), SafetensorsDtype.F32, 64);
      for (int row = 0; row < 64; row++) {
        float max = 0;
        for (int c = 0; c < 256; c++) {
          max = Math.max(max, Math.abs(up[row * 256 + c]));
          int code = ((packed.getInt((row * 64 + c / 4) * 4) >>> (8 * (c % 4))) & 0xff) - 128;
          assertThat(code).isBetween(-127, 127);
          assertThat(Math.abs(code * scales[row] - up[row * 256 + c])).isLessThanOrEqualTo(scales[row] / 2 * 1.0001f);
        }
        assertThat(scales[row]).isEqualTo(max / 127f);
      }
      // Embeddings, norms and lm_head stay float and byte-identical.
      for (String kept : List.of("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight")) {
        assertThat(q.tensorData(kept)).isEqualTo(a.tensorData(kept));
      }
      JsonNode config = JsonMapper.builder().build().readTree(q.metadata().get("quantization_config"));
      assertThat(config.get("quant_method").asString()).isEqualTo("compressed-tensors");
      assertThat(config.get("format").asString()).isEqualTo("pack-quantized");
      JsonNode weights = config.get("config_groups").get("group_0").get("weights");
      assertThat(weights.get("num_bits").asInt()).isEqualTo(8);
      assertThat(weights.get("strategy").asString()).isEqualTo("channel");
      assertThat(weights.get("symmetric").asBoolean()).isTrue();
      assertThat(config.get("ignore").toString()).isEqualTo("[\"model.embed_tokens\",\"lm_head\"]");
      assertThat(q.metadata().get("format")).isEqualTo("pt");
    }
    assertThat(r.quantizationConfig()).contains("\"format\":\"pack-quantized\"");
  }

  @Test
  void int4GroupOutputIsPackedEightCodesPerInt32WordAndDecodesWithinHalfAStep() throws Exception {
    Path in = checkpoint(SafetensorsDtype.BF16);
    Path out = dir.resolve("q4.safetensors");
    SafetensorsPipeline.Result r = SafetensorsPipeline.run(in, out,
        List.of(QuantizeSpec.integer(4, true, QuantizeSpec.Granularity.GROUP, 128, null)), Progress.NONE);
    TensorReport t = r.steps().getFirst().tensors().getFirst();
    // 64 x 256 bf16 = 32768 bytes -> 8192 packed + 64 x 2 bf16 scales (256) + 16 shape bytes.
    assertThat(t.bytesBefore()).isEqualTo(32768);
    assertThat(t.bytesAfter()).isEqualTo(8192 + 256 + 16);
    try (SafetensorsFile q = SafetensorsFile.open(out)) {
      assertThat(q.entry("model.layers.0.mlp.up_proj.weight_packed").dtype()).isEqualTo(SafetensorsDtype.I32);
      assertThat(q.entry("model.layers.0.mlp.up_proj.weight_packed").shape()).containsExactly(64L, 32L);
      assertThat(q.entry("model.layers.0.mlp.up_proj.weight_scale").shape()).containsExactly(64L, 2L);
      ByteBuffer shape = q.tensorData("model.layers.0.mlp.up_proj.weight_shape");
      assertThat(List.of(shape.getLong(0), shape.getLong(8))).containsExactly(64L, 256L);
      ByteBuffer packed = q.tensorData("model.layers.0.mlp.up_proj.weight_packed");
      float[] scales = SafetensorsPipeline.Floats.read(q.tensorData("model.layers.0.mlp.up_proj.weight_scale"),
          SafetensorsDtype.BF16, 128);
      float[] original = SafetensorsPipeline.Floats.read(
          SafetensorsPipeline.Floats.write(up, SafetensorsDtype.BF16), SafetensorsDtype.BF16, up.length);
      for (int row = 0; row < 64; row++) {
        for (int c = 0; c < 256; c++) {
          int word = packed.getInt((row * 32 + c / 8) * 4);
          int code = ((word >>> (4 * (c % 8))) & 0xf) - 8;
          float scale = scales[row * 2 + c / 128];
          assertThat(code).isBetween(-7, 7);
          assertThat(Math.abs(code * scale - original[row * 256 + c])).isLessThanOrEqualTo(scale / 2 * 1.001f);
        }
      }
      JsonNode config = JsonMapper.builder().build().readTree(q.metadata().get("quantization_config"));
      assertThat(config.get("format").asString()).isEqualTo("pack-quantized");
      assertThat(config.get("config_groups").get("group_0").get("weights").get("group_size").asInt()).isEqualTo(128);
    }
    assertThat(t.sqnrDb()).isGreaterThan(15);
  }

  @Test
  void pruneThenQuantizeZeroesExactlyHalfAndZerosStayZero() throws Exception {
    Path in = checkpoint(SafetensorsDtype.F16);
    Path out = dir.resolve("pq.safetensors");
    SafetensorsPipeline.Result r = SafetensorsPipeline.run(in, out,
        List.of(PruneSpec.layer(0.5), QuantizeSpec.int8(false, QuantizeSpec.Granularity.CHANNEL)), Progress.NONE);
    assertThat(r.steps().get(0).tensors().getFirst().sparsityAfter()).isEqualTo(0.5);
    assertThat(r.steps().get(1).tensors().getFirst().sparsityAfter()).isEqualTo(0.5);
    try (SafetensorsFile q = SafetensorsFile.open(out)) {
      assertThat(q.entry("model.layers.0.mlp.up_proj.weight_zero_point").shape()).containsExactly(64L, 1L);
    }
  }

  @Test
  void quantizeBeforeAnotherStepAndUndivisibleGroupsAreRefused() throws Exception {
    Path in = checkpoint(SafetensorsDtype.F32);
    assertThatThrownBy(() -> SafetensorsPipeline.run(in, dir.resolve("x"),
        List.of(QuantizeSpec.int8(true, null), PruneSpec.layer(0.5)), Progress.NONE))
        .isInstanceOf(CompressionException.class)
        .hasMessageStartingWith("steps[0]: quantize must be the last step for safetensors models");
    assertThatThrownBy(() -> SafetensorsPipeline.run(in, dir.resolve("x"),
        List.of(new QuantizeSpec(4, true, QuantizeSpec.Granularity.GROUP, List.of("lm_head.weight"), List.of(), 128,
            null, true, null, null, null)), Progress.NONE))
        .isInstanceOf(CompressionException.class)
        .hasMessageStartingWith("steps[0].weights.groupSize: tensor 'lm_head.weight' has 64 input columns, not a "
            + "multiple of the group size 128");
    assertThat(dir.resolve("x")).doesNotExist();
  }

  @Test
  void int8GroupOfF16WeightsDecodesWithinHalfAStoredStep() throws Exception {
    Path in = checkpoint(SafetensorsDtype.F16);
    Path out = dir.resolve("g.safetensors");
    SafetensorsPipeline.run(in, out, List.of(QuantizeSpec.integer(8, true, QuantizeSpec.Granularity.GROUP, 64, null)),
        Progress.NONE);
    try (SafetensorsFile q = SafetensorsFile.open(out)) {
      String p = "model.layers.0.mlp.up_proj.";
      assertThat(q.entry(p + "weight_scale").dtype()).isEqualTo(SafetensorsDtype.F16);
      assertThat(q.entry(p + "weight_scale").shape()).containsExactly(64L, 4L);
      float[] scales = SafetensorsPipeline.Floats.read(q.tensorData(p + "weight_scale"), SafetensorsDtype.F16, 256);
      float[] original = SafetensorsPipeline.Floats.read(SafetensorsPipeline.Floats.write(up, SafetensorsDtype.F16),
          SafetensorsDtype.F16, up.length);
      ByteBuffer packed = q.tensorData(p + "weight_packed");
      for (int i = 0; i < up.length; i++) {
        int row = i / 256;
        int c = i % 256;
        int code = ((packed.getInt((row * 64 + c / 4) * 4) >>> (8 * (c % 4))) & 0xff) - 128;
        float scale = scales[row * 4 + c / 64];
        // Codes come from the scale as stored in F16, so the bound holds without slack for rounding.
        assertThat(Math.abs(code * scale - original[i])).isLessThanOrEqualTo(scale / 2 * 1.0001f);
      }
    }
  }

  @Test
  void correlationIsRefusedForNeedingActivationsAndAnUnknownMethodGetsTheSharedMessage() {
    List<dev.modelpress.format.TensorInfo> tensors = List.of(
        new dev.modelpress.format.TensorInfo(UP, "BF16", List.of(64L, 256L), List.of()));
    SafetensorsPipeline.Check c = SafetensorsPipeline.check(List.of(
        new PruneSpec(PruneSpec.CORRELATION, 0.5, null, PruneSpec.Scope.LAYER, List.of(), List.of())), tensors);
    assertThat(c.invalid()).singleElement().satisfies(v -> {
      assertThat(v.field()).isEqualTo("steps[0].method");
      assertThat(v.message()).startsWith("correlation pruning finds redundant neurons from their activations");
    });
    PruneSpec random = new PruneSpec("random", 0.5, null, PruneSpec.Scope.LAYER, List.of(), List.of());
    List<Violation> shared = new java.util.ArrayList<>();
    SpecValidator.validatePrune(random, "steps[0]", shared);
    assertThat(SafetensorsPipeline.check(List.of(random), tensors).invalid()).isEqualTo(shared)
        .containsExactly(new Violation("steps[0].method",
            "unknown pruning method 'random'; supported: magnitude, nm, structured, wanda, sparsegpt, correlation"));
  }

  @Test
  void checkNamesTheFieldOfEveryStepThatCannotRunOnACheckpoint() {
    List<dev.modelpress.format.TensorInfo> tensors = List.of(
        new dev.modelpress.format.TensorInfo(UP, "BF16", List.of(64L, 256L), List.of()),
        new dev.modelpress.format.TensorInfo("model.norm.weight", "BF16", List.of(64L), List.of()));
    SafetensorsPipeline.Check c = SafetensorsPipeline.check(List.of(
        new PruneSpec(PruneSpec.STRUCTURED, 0.5, null, PruneSpec.Scope.LAYER, List.of(), List.of(), null, null,
            PruneSpec.Criterion.L1, PruneSpec.Target.CHANNELS),
        new PruneSpec("magnitude", 0.5, null, PruneSpec.Scope.LAYER, List.of("model\\.layers\\.9.*"), List.of()),
        new QuantizeSpec(8, true, null, List.of("model.norm.weight"), List.of())), tensors);
    assertThat(c.invalid()).extracting(Violation::field)
        .containsExactly("steps[0].method", "steps[1].include[0]", "steps[2].include");
    assertThat(c.invalid().get(2).message()).contains("'model.norm.weight' (shape [64]) is not a 2-D *.weight");
    assertThat(c.notBuilt()).isEmpty();

    SafetensorsPipeline.Check nm = SafetensorsPipeline.check(List.of(PruneSpec.layer(0.5),
        QuantizeSpec.integer(4, false, QuantizeSpec.Granularity.CHANNEL, null, null)), tensors);
    assertThat(nm.invalid()).isEmpty();
    assertThat(nm.notBuilt()).singleElement().asString().startsWith("steps[1].weights.symmetric:");
  }

  @Test
  void progressComesBeforeEveryTensorAndCancellingThereLeavesNoFileBehind() throws Exception {
    Path in = checkpoint(SafetensorsDtype.F32);
    List<Integer> items = new java.util.ArrayList<>();
    SafetensorsPipeline.run(in, dir.resolve("p.safetensors"), List.of(QuantizeSpec.int8(true, null)),
        (step, steps, type, item, total, message) -> {
          assertThat(total).isEqualTo(4);
          items.add(item);
        });
    assertThat(items).containsExactly(0, 1, 2, 3, 4);

    assertThatThrownBy(() -> SafetensorsPipeline.run(in, dir.resolve("c.safetensors"),
        List.of(QuantizeSpec.int8(true, null)), (step, steps, type, item, total, message) -> {
          if (item == 2) {
            throw new CompressionCancelledException("cancelled");
          }
        })).isInstanceOf(CompressionCancelledException.class);
    try (var files = java.nio.file.Files.list(dir)) {
      assertThat(files.map(f -> f.getFileName().toString()))
          .containsExactlyInAnyOrder("model.safetensors", "p.safetensors");
    }
  }
}
