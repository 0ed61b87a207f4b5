package dev.modelpress.compression;

import static dev.modelpress.testing.OnnxGraphBuilder.intAttr;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.compression.QuantizeSpec.RangeMethod;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model whose weights are FLOAT16 initializers (a two-layer MLP computed in half precision, with
 * float input and output as fp16 exporters' keep-io-types mode writes it) is quantized from its
 * half values; each decoded weight is cast back to FLOAT16, so the graph's types hold and ONNX
 * Runtime runs it next to the original.
 */
class Fp16WeightQuantizationTest {

  static final int BATCH = 16;
  static final int IN = 64;
  static final int HIDDEN = 32;
  static final int OUT = 10;

  @TempDir Path dir;

  static TensorProto half(String name, float[] values, long... dims) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      b.putShort(Float.floatToFloat16(v));
    }
    TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.FLOAT16_VALUE)
        .setRawData(ByteString.copyFrom(b.array()));
    for (long d : dims) {
      t.addDims(d);
    }
    return t.build();
  }

  static ModelProto fp16Mlp(long opset) {
    return OnnxGraphBuilder.opset(opset)
        .input("x", BATCH, IN)
        .output("y")
        .initializer(half("w1", OnnxGraphBuilder.randomFloats(1, IN * HIDDEN, 0.2f), IN, HIDDEN))
        .initializer(half("b1", OnnxGraphBuilder.randomFloats(2, HIDDEN, 0.1f), HIDDEN))
        .initializer(half("w2", OnnxGraphBuilder.randomFloats(3, HIDDEN * OUT, 0.3f), HIDDEN, OUT))
        .initializer(half("b2", OnnxGraphBuilder.randomFloats(4, OUT, 0.1f), OUT))
        .node("Cast", List.of("x"), List.of("x16"), intAttr("to", TensorProto.DataType.FLOAT16_VALUE))
        .matMul("x16", "w1", "h")
        .add("h", "b1", "hb")
        .relu("hb", "r")
        .matMul("r", "w2", "z")
        .add("z", "b2", "zb")
        .node("Cast", List.of("zb"), List.of("y"), intAttr("to", TensorProto.DataType.FLOAT_VALUE))
        .build();
  }

  record Run(double relativeError, StepReport step, ModelProto model) {}

  Run quantizeAndRun(ModelProto original, QuantizeSpec spec, float[] x) {
    PipelineResult r = OnnxPipeline.run(original, List.of(spec), Progress.NONE);
    float[] expected;
    float[] got;
    try (OrtRunner a = new OrtRunner(OnnxGraphBuilder.write(original, dir));
        OrtRunner b = new OrtRunner(OnnxGraphBuilder.write(r.model(), dir))) {
      expected = a.run("y", "x", x, BATCH, IN);
      got = b.run("y", "x", x, BATCH, IN);
    }
    double num = 0;
    double den = 0;
    for (int i = 0; i < expected.length; i++) {
      num += (expected[i] - got[i]) * (expected[i] - got[i]);
      den += expected[i] * expected[i];
    }
    assertThat(expected).hasSize(BATCH * OUT);
    return new Run(Math.sqrt(num / den), r.steps().getFirst(), r.model());
  }

  @Test
  void fp16WeightsQuantizeToInt8AndInt4AndDecodeBackToFloat16InOnnxRuntime() {
    float[] x = OnnxGraphBuilder.randomFloats(9, BATCH * IN, 1f);
    for (long opset : new long[] {13, 21}) {
      ModelProto original = fp16Mlp(opset);
      Run int8 = quantizeAndRun(original, QuantizeSpec.int8(true, Granularity.CHANNEL), x);
      Run int4 = quantizeAndRun(original, QuantizeSpec.integer(4, false, Granularity.GROUP, 32, RangeMethod.MSE), x);
      System.out.printf("fp16 MLP, opset %d: relative output error int8 per channel %.5f, int4 group 32 %.5f%n",
          opset, int8.relativeError(), int4.relativeError());
      // Half-precision compute already differs from float by ~1e-3; int8 adds about as much.
      assertThat(int8.relativeError()).isLessThan(0.01);
      assertThat(int4.relativeError()).isLessThan(0.1).isGreaterThan(int8.relativeError());
      for (Run run : List.of(int8, int4)) {
        // The two matrices, from their 2-byte values: bytes before are 2 per weight.
        assertThat(run.step().tensors()).extracting(TensorReport::name).containsExactly("w1", "w2");
        for (TensorReport t : run.step().tensors()) {
          assertThat(t.bytesBefore()).isEqualTo(2 * t.parameters());
          // Codes + scales, plus < 200 bytes of unpack constants (which matter on a 320-weight matrix).
          assertThat(t.bytesAfter()).isLessThan(t.bytesBefore() * (run == int8 ? 6 : 4) / 10 + 200);
          assertThat(t.mse()).isGreaterThan(0);
        }
        // Each weight's name is now produced by a Cast to FLOAT16 (the MatMuls still read half).
        for (String w : List.of("w1", "w2")) {
          NodeProto producer = run.model().getGraph().getNodeList().stream()
              .filter(n -> n.getOutputList().contains(w)).findFirst().orElseThrow();
          assertThat(producer.getOpType()).isEqualTo("Cast");
          assertThat(producer.getAttribute(0).getI()).isEqualTo(TensorProto.DataType.FLOAT16_VALUE);
          assertThat(run.model().getGraph().getInitializerList()).noneMatch(t -> t.getName().equals(w));
        }
        // MatMulNBits takes float scales; a half weight never becomes one.
        assertThat(run.step().tensors()).noneMatch(t -> t.encoding().equals("MatMulNBits"));
      }
    }
  }
}
