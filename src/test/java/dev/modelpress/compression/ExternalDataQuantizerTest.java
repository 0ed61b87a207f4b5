package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.onnx.OnnxExternalData;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.ExternalDataModels;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExternalDataQuantizerTest {

  @TempDir Path dir;

  private static ModelProto mlpWithMetadata() {
    return Models.mlp(13).toBuilder()
        .addMetadataProps(StringStringEntryProto.newBuilder().setKey("author").setValue("tests"))
        .build();
  }

  @Test
  void externalDataModelQuantizesToTheSameCodesAsTheInMemoryPipelineAndRunsInOrt() throws Exception {
    ModelProto model = mlpWithMetadata();
    Path in = Files.createDirectory(dir.resolve("in"));
    Path inFile = ExternalDataModels.externalize(model, in, "model.onnx", 1000);
    Path out = Files.createDirectory(dir.resolve("out")).resolve("model.onnx");

    StepReport report = ExternalDataQuantizer.quantize(inFile, out,
        QuantizeSpec.int8(false, Granularity.CHANNEL), Progress.NONE);

    PipelineResult inMemory = OnnxPipeline.run(model, List.of(QuantizeSpec.int8(false, Granularity.CHANNEL)), Progress.NONE);
    assertThat(report.tensors()).extracting(TensorReport::name).containsExactly("W1", "W2", "W3");
    assertThat(report.tensors()).extracting(TensorReport::mse)
        .containsExactlyElementsOf(inMemory.steps().get(0).tensors().stream().map(TensorReport::mse).toList());
    try (OnnxExternalData q = OnnxExternalData.open(out)) {
      for (String w : List.of("W1", "W2", "W3")) {
        TensorProto codes = Models.initializer(q.model(), w + "_quantized");
        assertThat(OnnxExternalData.isExternal(codes)).isTrue();
        assertThat(ExternalDataModels.bytes(q, w + "_quantized").toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
            .as(w).isEqualTo(Models.int8(inMemory.model(), w + "_quantized"));
      }
      // Inputs, outputs, names and metadata survive; the bias stays inline and untouched.
      assertThat(q.model().getGraph().getInputList()).isEqualTo(model.getGraph().getInputList());
      assertThat(q.model().getGraph().getOutputList()).isEqualTo(model.getGraph().getOutputList());
      assertThat(q.model().getMetadataPropsList()).isEqualTo(model.getMetadataPropsList());
      assertThat(Models.initializer(q.model(), "b2")).isEqualTo(Models.initializer(model, "b2"));
    }
    // Codes are 1/4 of the fp32 bytes; each tensor starts on a 4 KiB boundary.
    assertThat(Files.size(out.resolveSibling("model.onnx.data"))).isEqualTo(2 * 4096 + 24 * 16);

    float[] x = OnnxGraphBuilder.randomFloats(5, 32, 1f);
    Path inMemoryFile = OnnxGraphBuilder.write(inMemory.model(), dir);
    try (OrtRunner original = OrtRunner.unfused(inFile);
        OrtRunner streamed = OrtRunner.unfused(out);
        OrtRunner reference = OrtRunner.unfused(inMemoryFile)) {
      float[] y0 = original.run("y", "x", x, 1, 32);
      float[] y1 = streamed.run("y", "x", x, 1, 32);
      assertThat(y1).containsExactly(reference.run("y", "x", x, 1, 32));
      assertThat(maxRelativeError(y0, y1)).isLessThan(0.02);
    }
  }

  @Test
  void singleFileModelWithUnsortedNodesQuantizesAndRunsInOrt() throws Exception {
    ModelProto sorted = Models.mlp(13);
    // Reverse the node order: valid ONNX need not list nodes topologically for this tool.
    var g = sorted.getGraph().toBuilder().clearNode();
    for (int i = sorted.getGraph().getNodeCount() - 1; i >= 0; i--) {
      g.addNode(sorted.getGraph().getNode(i));
    }
    Path in = OnnxGraphBuilder.write(sorted.toBuilder().setGraph(g).build(), dir);
    Path out = dir.resolve("q.onnx");
    StepReport r = ExternalDataQuantizer.quantize(in, out, QuantizeSpec.int8(true, Granularity.CHANNEL), Progress.NONE);
    assertThat(r.tensors()).hasSize(3);
    assertThat(r.summary()).isEqualTo("int8 weight quantization (symmetric, per channel) of 3 tensors: 10496 -> 3024 "
        + "bytes (28.8%), 9.22 effective bits per weight including scales and zero points, minmax range; encodings: "
        + "DequantizeLinear 3; streamed to external data");
    float[] x = OnnxGraphBuilder.randomFloats(6, 32, 1f);
    Path sortedFile = OnnxGraphBuilder.write(sorted, dir);
    try (OrtRunner a = new OrtRunner(sortedFile); OrtRunner b = new OrtRunner(out)) {
      float[] y0 = a.run("y", "x", x, 1, 32);
      float[] y1 = b.run("y", "x", x, 1, 32);
      assertThat(maxRelativeError(y0, y1)).isLessThan(0.02);
    }
  }

  /** max |b - a| over max |a|. */
  static double maxRelativeError(float[] a, float[] b) {
    double norm = 0;
    double diff = 0;
    for (int i = 0; i < a.length; i++) {
      norm = Math.max(norm, Math.abs(a[i]));
      diff = Math.max(diff, Math.abs(b[i] - a[i]));
    }
    return diff / norm;
  }

  private Path withEntries(String location, String offset, String length) throws Exception {
    Path in = Files.createDirectories(dir.resolve("hostile"));
    Path file = ExternalDataModels.externalize(Models.mlp(13), in, "model.onnx", 1000);
    ModelProto m = ModelProto.parseFrom(Files.readAllBytes(file));
    var g = m.getGraph().toBuilder();
    TensorProto.Builder w1 = g.getInitializer(0).toBuilder().clearExternalData();
    w1.addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue(location));
    if (offset != null) {
      w1.addExternalData(StringStringEntryProto.newBuilder().setKey("offset").setValue(offset));
    }
    if (length != null) {
      w1.addExternalData(StringStringEntryProto.newBuilder().setKey("length").setValue(length));
    }
    g.setInitializer(0, w1);
    OnnxModels.write(m.toBuilder().setGraph(g).build(), file);
    return file;
  }

  @Test
  void rejectsUnsafeOrOutOfRangeExternalReferencesPrecisely() throws Exception {
    assertThatThrownBy(() -> OnnxExternalData.open(withEntries("/etc/passwd", null, null)))
        .isInstanceOf(FormatException.class)
        .hasMessage("initializer 'W1' names external file '/etc/passwd' by an absolute path; locations must be "
            + "relative to the model's directory");
    assertThatThrownBy(() -> OnnxExternalData.open(withEntries("sub/../../model.onnx.data", null, null)))
        .isInstanceOf(FormatException.class)
        .hasMessage("initializer 'W1' names external file 'sub/../../model.onnx.data' with a '..' component; "
            + "locations must stay inside the model's directory");
    assertThatThrownBy(() -> OnnxExternalData.open(withEntries("missing.data", null, null)))
        .isInstanceOf(FormatException.class)
        .hasMessage("initializer 'W1' names external file 'missing.data', which does not exist beside the model "
            + "(or is not a regular file)");
    assertThatThrownBy(() -> OnnxExternalData.open(withEntries("model.onnx.data", "12288", "5120")))
        .isInstanceOf(FormatException.class)
        .hasMessage("initializer 'W1' reads bytes [12288, 17408) of external file 'model.onnx.data', which is "
            + "only 13824 bytes");
    assertThatThrownBy(() -> OnnxExternalData.open(withEntries("model.onnx.data", "0", "4096")))
        .isInstanceOf(FormatException.class)
        .hasMessage("initializer 'W1' declares dims [32, 40] of FLOAT = 5120 bytes but external 'length' is 4096");
    assertThatThrownBy(() -> OnnxExternalData.open(withEntries("model.onnx.data", "-1", null)))
        .isInstanceOf(FormatException.class)
        .hasMessage("initializer 'W1' has external 'offset' = '-1'; it must be a non-negative integer");
    // The single-file reader still refuses external data, pointing at the right upload.
    assertThatThrownBy(() -> OnnxModels.read(withEntries("model.onnx.data", null, null)))
        .isInstanceOf(FormatException.class)
        .hasMessageContaining("keeps its data in an external file");
  }
}
