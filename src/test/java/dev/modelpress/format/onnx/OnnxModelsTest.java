package dev.modelpress.format.onnx;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.ValueInfo;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OnnxModelsTest {

  @TempDir Path dir;

  @Test
  void roundTripOfMiniLmKeepsEveryInitializerByteAndRunsIdentically() throws Exception {
    ModelProto original = OnnxModels.read(MiniLm.path());
    Path rewritten = dir.resolve("rewritten.onnx");
    OnnxModels.write(original, rewritten);
    ModelProto again = OnnxModels.read(rewritten);

    assertThat(Files.size(rewritten)).isEqualTo(Files.size(MiniLm.path()));
    GraphProto a = original.getGraph();
    GraphProto b = again.getGraph();
    assertThat(b.getInitializerCount()).isEqualTo(a.getInitializerCount()).isEqualTo(102);
    assertThat(b.getNodeCount()).isEqualTo(a.getNodeCount());
    for (int i = 0; i < a.getInitializerCount(); i++) {
      assertThat(b.getInitializer(i).getName()).isEqualTo(a.getInitializer(i).getName());
      assertThat(b.getInitializer(i).getRawData()).isEqualTo(a.getInitializer(i).getRawData());
    }

    var input = MiniLm.randomInput(new Random(7), 12);
    try (OrtRunner before = new OrtRunner(MiniLm.path()); OrtRunner after = new OrtRunner(rewritten)) {
      float[] x = before.run("last_hidden_state", input);
      float[] y = after.run("last_hidden_state", input);
      assertThat(x).hasSize(12 * MiniLm.HIDDEN);
      assertThat(y).containsExactly(x);
    }
  }

  @Test
  void summarizesMiniLm() throws Exception {
    ModelProto model = OnnxModels.read(MiniLm.path());
    ModelSummary s = OnnxModels.summarize(model);

    long initializerElements = 0;
    for (TensorProto t : model.getGraph().getInitializerList()) {
      initializerElements += t.getDimsList().stream().reduce(1L, (x, y) -> x * y);
    }
    long constantElements = 0;
    for (NodeProto n : model.getGraph().getNodeList()) {
      if (n.getOpType().equals("Constant")) {
        for (AttributeProto a : n.getAttributeList()) {
          if (a.getName().equals("value")) {
            constantElements += a.getT().getDimsList().stream().reduce(1L, (x, y) -> x * y);
          }
        }
      }
    }
    assertThat(initializerElements).isEqualTo(22_565_888L);
    assertThat(s.parameterCount()).isEqualTo(initializerElements + constantElements);
    assertThat(s.tensors().stream().mapToLong(TensorInfo::elementCount).sum()).isEqualTo(22_565_888L);

    assertThat(s.format()).isEqualTo("onnx");
    assertThat(s.irVersion()).isEqualTo(6);
    assertThat(s.opsets()).containsEntry("", 11L);
    assertThat(s.producer()).isEqualTo("pytorch 2.0.1");
    assertThat(s.inputs()).extracting(ValueInfo::name)
        .containsExactly("input_ids", "attention_mask", "token_type_ids");
    assertThat(s.inputs().get(0)).isEqualTo(
        new ValueInfo("input_ids", "INT64", List.of("batch_size", "sequence_length")));
    assertThat(s.outputs()).extracting(ValueInfo::name).contains("last_hidden_state");

    TensorInfo words = s.tensors().stream()
        .filter(t -> t.name().equals("embeddings.word_embeddings.weight")).findFirst().orElseThrow();
    assertThat(words.dtype()).isEqualTo("FLOAT");
    assertThat(words.shape()).containsExactly(30522L, 384L);
    assertThat(words.consumers()).containsExactly("Gather:0");
    TensorInfo positions = s.tensors().stream()
        .filter(t -> t.name().equals("embeddings.position_ids")).findFirst().orElseThrow();
    assertThat(positions.dtype()).isEqualTo("INT64");
    assertThat(s.tensors().stream().filter(t -> t.consumers().contains("MatMul:1")).count()).isEqualTo(36);
  }

  @Test
  void summaryExcludesInitializersListedAsGraphInputsAndReportsUnknownDims() throws Exception {
    ModelProto m = OnnxGraphBuilder.opset(13)
        .input("x", 2, 3)
        .initializerAlsoInput("W", 3, 2)
        .initializer("W", new float[6], 3, 2)
        .matMul("x", "W", "y")
        .output("y")
        .build();
    m = m.toBuilder().addMetadataProps(StringStringEntryProto.newBuilder().setKey("k").setValue("v")).build();
    ModelSummary s = OnnxModels.summarize(m);
    assertThat(s.inputs()).extracting(ValueInfo::name).containsExactly("x");
    assertThat(s.outputs()).containsExactly(new ValueInfo("y", "FLOAT", List.of()));
    assertThat(s.metadata()).containsEntry("k", "v");
    assertThat(s.parameterCount()).isEqualTo(6);
  }

  @Test
  void rejectsTruncatedOnnxFile() throws Exception {
    byte[] all = Files.readAllBytes(MiniLm.path());
    Path half = dir.resolve("half.onnx");
    Files.write(half, Arrays.copyOf(all, all.length / 2));
    assertThatThrownBy(() -> OnnxModels.read(half))
        .isInstanceOf(FormatException.class)
        .hasMessageStartingWith("ONNX parse failed near byte")
        .hasMessageContaining("ended unexpectedly");
  }

  @Test
  void rejectsRandomBytes() throws Exception {
    byte[] noise = new byte[4096];
    new Random(42).nextBytes(noise);
    Path file = dir.resolve("noise.onnx");
    Files.write(file, noise);
    assertThatThrownBy(() -> OnnxModels.read(file))
        .isInstanceOf(FormatException.class)
        .message()
        .matches(m -> m.startsWith("ONNX parse failed") || m.startsWith("not an ONNX model"), "names the failure");
  }

  @Test
  void rejectsProtobufThatIsNotAnOnnxModel() throws Exception {
    Path file = dir.resolve("empty-graph.onnx");
    // Valid protobuf for ModelProto, but without a graph: e.g. a text file starting with "\b\u0007".
    OnnxModels.write(ModelProto.newBuilder().setIrVersion(7).addOpsetImport(
        dev.modelpress.model.onnx.proto.OnnxProto.OperatorSetIdProto.newBuilder().setVersion(13)).build(), file);
    assertThatThrownBy(() -> OnnxModels.read(file))
        .isInstanceOf(FormatException.class)
        .hasMessage("not an ONNX model: no graph");
  }

  @Test
  void rejectsZeroByteFile() throws Exception {
    Path file = Files.createFile(dir.resolve("empty.onnx"));
    assertThatThrownBy(() -> OnnxModels.read(file))
        .isInstanceOf(FormatException.class)
        .hasMessage("not an ONNX model: the file is empty");
  }

  @Test
  void rejectsTensorWhoseDimsDeclareMoreBytesThanRawDataHolds() throws Exception {
    TensorProto lying = OnnxTensors.floatTensor("W", new float[6], 3, 2).toBuilder()
        .clearDims().addDims(300).addDims(2).build();
    Path file = OnnxGraphBuilder.opset(13).input("x", 2, 300).initializer(lying)
        .matMul("x", "W", "y").output("y").writeTo(dir);
    assertThatThrownBy(() -> OnnxModels.read(file))
        .isInstanceOf(FormatException.class)
        .hasMessage("tensor 'W' (initializer 'W') declares dims [300, 2] of FLOAT = 2400 bytes "
            + "but raw_data holds 24 bytes");
  }

  @Test
  void rejectsTypedDataCountThatDisagreesWithDims() throws Exception {
    TensorProto t = TensorProto.newBuilder().setName("idx").setDataType(TensorProto.DataType.INT64_VALUE)
        .addDims(4).addInt64Data(1).addInt64Data(2).build();
    Path file = OnnxGraphBuilder.opset(13).input("x", 8, 2).initializer(t)
        .gather("x", "idx", "y").output("y").writeTo(dir);
    assertThatThrownBy(() -> OnnxModels.read(file))
        .isInstanceOf(FormatException.class)
        .hasMessageContaining("tensor 'idx'")
        .hasMessageContaining("4 values but int64_data holds 2");
  }

  @Test
  void rejectsExternalDataTensor() throws Exception {
    TensorProto external = TensorProto.newBuilder().setName("W").setDataType(TensorProto.DataType.FLOAT_VALUE)
        .addDims(3).addDims(2)
        .setDataLocation(TensorProto.DataLocation.EXTERNAL)
        .addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue("weights.bin"))
        .build();
    Path file = OnnxGraphBuilder.opset(13).input("x", 2, 3).initializer(external)
        .matMul("x", "W", "y").output("y").writeTo(dir);
    assertThatThrownBy(() -> OnnxModels.read(file))
        .isInstanceOf(FormatException.class)
        .hasMessageContaining("tensor 'W'")
        .hasMessageContaining("external data is not supported in a single-file upload");
  }

  @Test
  void rejectsBadTensorInsideSubgraphAttribute() throws Exception {
    TensorProto bad = TensorProto.newBuilder().setName("inner").setDataType(TensorProto.DataType.FLOAT_VALUE)
        .addDims(4).setRawData(ByteString.copyFrom(new byte[3])).build();
    GraphProto branch = GraphProto.newBuilder().setName("then")
        .addNode(NodeProto.newBuilder().setOpType("Constant").addOutput("c")
            .addAttribute(AttributeProto.newBuilder().setName("value").setType(AttributeProto.AttributeType.TENSOR).setT(bad)))
        .build();
    AttributeProto thenBranch = AttributeProto.newBuilder().setName("then_branch")
        .setType(AttributeProto.AttributeType.GRAPH).setG(branch).build();
    Path file = OnnxGraphBuilder.opset(13).input("cond", TensorProto.DataType.BOOL)
        .node("If", List.of("cond"), List.of("y"), thenBranch).output("y").writeTo(dir);
    assertThatThrownBy(() -> OnnxModels.read(file))
        .isInstanceOf(FormatException.class)
        .hasMessageContaining("tensor 'inner'")
        .hasMessageContaining("= 16 bytes but raw_data holds 3 bytes");
  }

  @Test
  void rejectsUnsupportedDataTypeAndNegativeDims() throws Exception {
    TensorProto undefined = TensorProto.newBuilder().setName("u").setDataType(0).addDims(1).build();
    Path a = OnnxGraphBuilder.opset(13).input("x", 1).initializer(undefined)
        .add("x", "u", "y").output("y").writeTo(dir);
    assertThatThrownBy(() -> OnnxModels.read(a)).isInstanceOf(FormatException.class)
        .hasMessage("tensor 'u' (initializer 'u') has unsupported data_type UNDEFINED");

    TensorProto negative = OnnxTensors.floatTensor("n", new float[0]).toBuilder().addDims(-2).build();
    Path b = OnnxGraphBuilder.opset(13).input("x", 1).initializer(negative)
        .add("x", "n", "y").output("y").writeTo(dir);
    assertThatThrownBy(() -> OnnxModels.read(b)).isInstanceOf(FormatException.class)
        .hasMessage("tensor 'n' (initializer 'n') has negative dimension -2 at index 0");
  }

  @Test
  void readsFloatDataAndFloat16Initializers() throws IOException, FormatException {
    TensorProto typed = TensorProto.newBuilder().setName("W").setDataType(TensorProto.DataType.FLOAT_VALUE)
        .addDims(2).addFloatData(1.5f).addFloatData(-2f).build();
    assertThat(OnnxTensors.toFloats(typed)).containsExactly(1.5f, -2f);
    TensorProto half = OnnxTensors.withFloats(
        TensorProto.newBuilder().setName("H").setDataType(TensorProto.DataType.FLOAT16_VALUE).addDims(3).build(),
        new float[] {0.5f, -3f, 0f});
    assertThat(half.getRawData().size()).isEqualTo(6);
    assertThat(OnnxTensors.toFloats(half)).containsExactly(0.5f, -3f, 0f);
    Path file = OnnxGraphBuilder.opset(13).input("x", 2).initializer(typed)
        .add("x", "W", "y").output("y").writeTo(dir);
    assertThat(OnnxModels.read(file).getGraph().getInitializer(0).getFloatDataList()).containsExactly(1.5f, -2f);
  }
}
