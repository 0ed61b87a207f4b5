package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import com.google.protobuf.ByteString;
import dev.modelpress.compression.QuantizeSpec.Format;
import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.compression.QuantizeSpec.RangeMethod;
import dev.modelpress.compression.QuantizeSpec.Scheme;
import dev.modelpress.compression.QuantizeSpec.WeightType;
import dev.modelpress.format.onnx.OnnxExternalData;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.ExternalDataModels;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The streaming quantizer against the in-memory pipeline, scheme by scheme: the same small model is
 * quantized in memory and, with its weights in external data, by {@link ExternalDataQuantizer} cut
 * into pieces of 100 elements (so every tensor spans many pieces, odd 4-bit runs carry a nibble
 * across pieces, shared channel ranges take their two passes). The two outputs must have the same
 * nodes, the same initializers byte for byte once external data is read back, the same report
 * numbers, and identical ONNX Runtime outputs.
 */
class StreamingQuantizationEquivalenceTest {

  @TempDir Path dir;

  /**
   * x[1, 40] · W1[40, 48] (MatMul B: channels inside an outer axis, groups along the outermost) ->
   * Relu -> Gemm(W2[24, 48], transB: channels outermost, groups inside rows) + b2 -> · W3[24, 20].
   * Group 32 leaves a short last group in every weight.
   */
  static ModelProto model(long opset) {
    return OnnxGraphBuilder.opset(opset).input("x", 1, 40)
        .initializer("W1", OnnxGraphBuilder.randomFloats(1, 40 * 48, 0.5f), 40, 48)
        .initializer("W2", OnnxGraphBuilder.randomFloats(2, 24 * 48, 0.3f), 24, 48)
        .initializer("b2", OnnxGraphBuilder.randomFloats(3, 24, 0.1f), 24)
        .initializer("W3", OnnxGraphBuilder.randomFloats(4, 24 * 20, 1f), 24, 20)
        .matMul("x", "W1", "h1").relu("h1", "a1").gemm("a1", "W2", "b2", "h2", true).matMul("h2", "W3", "y")
        .output("y").build();
  }

  private static QuantizeSpec spec(int bits, boolean symmetric, Granularity g, Integer group, Scheme scheme,
      boolean signed, RangeMethod range, Format format) {
    return new QuantizeSpec(bits, symmetric, g, List.of(), List.of(), group, scheme, signed, null, range, format);
  }

  static Stream<Arguments> schemes() {
    Scheme i = Scheme.INTEGER;
    RangeMethod mm = RangeMethod.MINMAX;
    RangeMethod mse = RangeMethod.MSE;
    return Stream.of(
        Arguments.of("int8 symmetric per channel, DequantizeLinear", 13,
            spec(8, true, Granularity.CHANNEL, null, i, true, mm, null), "DequantizeLinear"),
        Arguments.of("int8 asymmetric per tensor", 13, spec(8, false, Granularity.TENSOR, null, i, true, mm, null),
            "DequantizeLinear"),
        Arguments.of("uint8 asymmetric per channel", 13, spec(8, false, Granularity.CHANNEL, null, i, false, mm, null),
            "DequantizeLinear"),
        Arguments.of("int8 per channel, mse range", 13, spec(8, true, Granularity.CHANNEL, null, i, true, mse, null),
            "DequantizeLinear"),
        Arguments.of("int8 per channel below opset 13: unpacked", 11,
            spec(8, true, Granularity.CHANNEL, null, i, true, mm, null), "packed+unpack"),
        Arguments.of("int8 group 32, blocked DequantizeLinear", 21,
            spec(8, true, Granularity.GROUP, 32, i, true, mm, null), "DequantizeLinear"),
        Arguments.of("int4 symmetric group 32, blocked DequantizeLinear", 21,
            spec(4, true, Granularity.GROUP, 32, i, true, mm, null), "DequantizeLinear"),
        Arguments.of("uint4 asymmetric group 64, mse", 21, spec(4, false, Granularity.GROUP, 64, i, false, mse, null),
            "DequantizeLinear"),
        Arguments.of("int4 group 32 at opset 17: MatMulNBits and unpack", 17,
            spec(4, true, Granularity.GROUP, 32, i, true, mm, null), "MatMulNBits"),
        Arguments.of("int4 asymmetric group 32, format matmulnbits", 21,
            spec(4, false, Granularity.GROUP, 32, i, true, mm, Format.MATMULNBITS), "MatMulNBits"),
        Arguments.of("int4 per tensor, mse range", 21, spec(4, true, Granularity.TENSOR, null, i, true, mse, null),
            "DequantizeLinear"),
        Arguments.of("int2 per channel", 21, spec(2, true, Granularity.CHANNEL, null, i, true, mm, null),
            "packed+unpack"),
        Arguments.of("ternary per channel, mse threshold", 21,
            spec(2, true, Granularity.CHANNEL, null, Scheme.TERNARY, true, mse, null), "packed+unpack"),
        Arguments.of("ternary per tensor", 21, spec(2, true, Granularity.TENSOR, null, Scheme.TERNARY, true, mm, null),
            "packed+unpack"),
        Arguments.of("binary group 32", 21, spec(1, true, Granularity.GROUP, 32, i, true, mm, null), "packed+unpack"),
        Arguments.of("fp16 cast", 13, QuantizeSpec.cast(WeightType.FP16), "Cast"),
        Arguments.of("bf16 cast", 13, QuantizeSpec.cast(WeightType.BF16), "Cast"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("schemes")
  void streamedOutputEqualsTheInMemoryPipelinesAndRunsIdenticallyInOrt(String label, long opset, QuantizeSpec spec,
      String firstEncoding) throws Exception {
    ModelProto model = model(opset);
    PipelineResult inMemory = OnnxPipeline.run(model, List.of(spec), Progress.NONE);
    Path in = Files.createDirectory(dir.resolve("in"));
    Path inFile = ExternalDataModels.externalize(model, in, "model.onnx", 256);
    Path out = Files.createDirectory(dir.resolve("out")).resolve("model.onnx");

    StepReport streamed = ExternalDataQuantizer.quantize(inFile, out, spec, Progress.NONE, Long.MAX_VALUE, 100);

    ModelProto expected = inMemory.model();
    ModelProto actual;
    try (OnnxExternalData q = OnnxExternalData.open(out)) {
      actual = materialized(q);
      // Streamed codes always live in the data file; other emitted tensors there from 1 KiB on.
      for (TensorProto t : q.model().getGraph().getInitializerList()) {
        String weight = t.getName().replaceAll("_(quantized|fp16|bf16)$", "");
        boolean streamedCodes = !weight.equals(t.getName()) && streamed.tensors().stream()
            .anyMatch(r -> r.name().equals(weight) && List.of("DequantizeLinear", "Cast").contains(r.encoding()));
        if (OnnxExternalData.isExternal(t)) {
          assertThat(streamedCodes || OnnxExternalData.ref(t).length() >= 1024).as(t.getName()).isTrue();
        } else {
          assertThat(streamedCodes).as(t.getName()).isFalse();
          assertThat(t.getRawData().size()).as(t.getName()).isLessThan(1024);
        }
      }
    }
    assertThat(actual.getGraph().getNodeList()).isEqualTo(expected.getGraph().getNodeList());
    assertThat(actual.getGraph().getInitializerList()).isEqualTo(expected.getGraph().getInitializerList());
    assertThat(actual.getGraph().getInputList()).isEqualTo(expected.getGraph().getInputList());
    assertThat(actual.getOpsetImportList()).isEqualTo(expected.getOpsetImportList());

    List<TensorReport> want = inMemory.steps().getFirst().tensors();
    assertThat(streamed.tensors()).hasSameSizeAs(want);
    assertThat(streamed.tensors().getFirst().encoding()).isEqualTo(firstEncoding);
    for (int t = 0; t < want.size(); t++) {
      TensorReport a = streamed.tensors().get(t);
      TensorReport b = want.get(t);
      assertThat(a.name()).isEqualTo(b.name());
      assertThat(a.bytesAfter()).as(a.name()).isEqualTo(b.bytesAfter());
      assertThat(a.encoding()).as(a.name()).isEqualTo(b.encoding());
      assertThat(a.mse()).as(a.name()).isEqualTo(b.mse());
      if (b.clipRatio() != null) {
        assertThat(a.clipRatio()).as(a.name()).isCloseTo(b.clipRatio(), within(1e-12));
      }
    }
    assertThat(streamed.summary()).isEqualTo(inMemory.steps().getFirst().summary() + "; streamed to external data");

    Path inMemoryFile = OnnxGraphBuilder.write(expected, Files.createDirectory(dir.resolve("mem")));
    float[] x = OnnxGraphBuilder.randomFloats(5, 40, 1f);
    try (OrtRunner original = OrtRunner.unfused(inFile);
        OrtRunner s = OrtRunner.unfused(out);
        OrtRunner m = OrtRunner.unfused(inMemoryFile)) {
      float[] y = s.run("y", "x", x, 1, 40);
      assertThat(y).containsExactly(m.run("y", "x", x, 1, 40));
      assertThat(y).isNotEqualTo(original.run("y", "x", x, 1, 40));
    }
  }

  @Test
  void int4GroupCodesArePackedIntoTheDataFileAtHalfAByteAWeight() throws Exception {
    ModelProto model = model(21);
    Path in = Files.createDirectory(dir.resolve("in"));
    Path inFile = ExternalDataModels.externalize(model, in, "model.onnx", 256);
    Path out = Files.createDirectory(dir.resolve("out")).resolve("model.onnx");
    ExternalDataQuantizer.quantize(inFile, out, spec(4, true, Granularity.GROUP, 32, Scheme.INTEGER, true,
        RangeMethod.MINMAX, null), Progress.NONE, Long.MAX_VALUE, 100);
    try (OnnxExternalData q = OnnxExternalData.open(out)) {
      TensorProto codes = Models.initializer(q.model(), "W1_quantized");
      assertThat(codes.getDataType()).isEqualTo(TensorProto.DataType.INT4_VALUE);
      assertThat(OnnxExternalData.isExternal(codes)).isTrue();
      assertThat(OnnxExternalData.ref(codes).length()).isEqualTo(40 * 48 / 2);
      // Scales [2 blocks, 48] = 384 bytes stay inline (under the 1 KiB threshold).
      assertThat(OnnxExternalData.isExternal(Models.initializer(q.model(), "W1_scale"))).isFalse();
    }
  }

  @Test
  void wholeTensorEncodingsAboveTheHeapLimitFailNamingTheTensorAndTheWayOut() throws Exception {
    Path in = Files.createDirectory(dir.resolve("in"));
    Path inFile = ExternalDataModels.externalize(model(17), in, "model.onnx", 256);
    Path out = Files.createDirectory(dir.resolve("out")).resolve("model.onnx");
    assertThatThrownBy(() -> ExternalDataQuantizer.quantize(inFile, out, spec(4, true, Granularity.GROUP, 32,
        Scheme.INTEGER, true, RangeMethod.MINMAX, null), Progress.NONE, 1000, 100))
        .isInstanceOf(CompressionException.class)
        .hasMessage("tensor 'W1' has 1920 weights; its MatMulNBits encoding reorders codes across the whole tensor, "
            + "which needs 1920 bytes on the heap, above this worker's limit of 1000 (use granularity group with "
            + "format qdq on an opset 21 model, which streams)");
    // The same limit does not touch a streamed scheme.
    StepReport r = ExternalDataQuantizer.quantize(inFile, out, QuantizeSpec.int8(true, Granularity.CHANNEL),
        Progress.NONE, 1000, 100);
    assertThat(r.tensors()).hasSize(3);
  }

  @Test
  void nonFiniteWeightFailsWithTheInMemoryMessageCountingTheWholeTensor() throws Exception {
    float[] w1 = OnnxGraphBuilder.randomFloats(1, 40 * 48, 0.5f);
    w1[5] = Float.NaN;
    w1[1900] = Float.POSITIVE_INFINITY;
    ModelProto model = model(21);
    GraphProto.Builder g = model.getGraph().toBuilder();
    g.setInitializer(0, OnnxGraphBuilder.opset(21).initializer("W1", w1, 40, 48).build().getGraph().getInitializer(0));
    Path in = Files.createDirectory(dir.resolve("in"));
    Path inFile = ExternalDataModels.externalize(model.toBuilder().setGraph(g).build(), in, "model.onnx", 256);
    Path out = Files.createDirectory(dir.resolve("out")).resolve("model.onnx");
    for (QuantizeSpec s : List.of(QuantizeSpec.int8(true, Granularity.CHANNEL),
        spec(4, true, Granularity.GROUP, 32, Scheme.INTEGER, true, RangeMethod.MINMAX, null),
        QuantizeSpec.cast(WeightType.FP16))) {
      assertThatThrownBy(() -> ExternalDataQuantizer.quantize(inFile, out, s, Progress.NONE, Long.MAX_VALUE, 100))
          .isInstanceOf(CompressionException.class)
          .hasMessage("tensor 'W1' contains 2 NaN or infinite values; it cannot be compressed");
    }
  }

  /** The model with every external initializer's bytes read back inline, as the in-memory path writes them. */
  private static ModelProto materialized(OnnxExternalData q) {
    GraphProto.Builder g = q.model().getGraph().toBuilder().clearInitializer();
    for (TensorProto t : q.model().getGraph().getInitializerList()) {
      if (OnnxExternalData.isExternal(t)) {
        byte[] bytes = q.data(t).toArray(ValueLayout.JAVA_BYTE);
        g.addInitializer(t.toBuilder().clearExternalData().clearDataLocation().setRawData(ByteString.copyFrom(bytes)));
      } else {
        g.addInitializer(t);
      }
    }
    return q.model().toBuilder().setGraph(g).build();
  }
}
