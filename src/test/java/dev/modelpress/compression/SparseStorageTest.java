package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.SparseTensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The measurement behind the storage choice in docs/pruning.md: ONNX sparse initializers (which
 * ONNX Runtime loads, densifying them) against gzip of the dense file (what jobs write as
 * {@code model.onnx.gz}), on a magnitude-pruned model.
 */
class SparseStorageTest {

  @TempDir Path dir;

  static ModelProto model() {
    return OnnxGraphBuilder.opset(13)
        .input("x", 1, 512)
        .initializer("W1", DeepCompressionTest.gaussian(1, 512 * 512, 0.05f), 512, 512)
        .initializer("W2", DeepCompressionTest.gaussian(2, 512 * 256, 0.05f), 512, 256)
        .matMul("x", "W1", "h").relu("h", "r").matMul("r", "W2", "y")
        .output("y")
        .build();
  }

  @ParameterizedTest
  @ValueSource(doubles = {0.5, 0.8})
  void gzipOfThePrunedFileIsSmallerThanDenseAndThanSparseInitializers(double sparsity) throws Exception {
    ModelProto pruned = OnnxPipeline.run(model(), List.of(Models.weights(PruneSpec.layer(sparsity))), Progress.NONE)
        .model();
    Path dense = OnnxGraphBuilder.write(pruned, dir);
    Path gz = dir.resolve("model-" + sparsity + ".onnx.gz");
    try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(gz))) {
      Files.copy(dense, out);
    }
    Path sparse64 = dir.resolve("sparse64-" + sparsity + ".onnx");
    Path sparse32 = dir.resolve("sparse32-" + sparsity + ".onnx");
    OnnxModels.write(toSparse(pruned, 8), sparse64);
    OnnxModels.write(toSparse(pruned, 4), sparse32);

    // ONNX Runtime loads sparse initializers and computes the same outputs.
    float[] x = DeepCompressionTest.gaussian(3, 512, 1f);
    try (OrtRunner a = new OrtRunner(dense); OrtRunner b = new OrtRunner(sparse64); OrtRunner c = new OrtRunner(sparse32)) {
      float[] y = a.run("y", "x", x, 1, 512);
      assertThat(b.run("y", "x", x, 1, 512)).containsExactly(y);
      assertThat(c.run("y", "x", x, 1, 512)).containsExactly(y);
    }
    long d = Files.size(dense);
    System.out.printf("sparsity %.0f%%: dense %d B, gzip %d B (%.3f), sparse_initializer int64 %d B (%.3f), "
            + "int32 %d B (%.3f)%n", 100 * sparsity, d, Files.size(gz), Files.size(gz) / (double) d,
        Files.size(sparse64), Files.size(sparse64) / (double) d, Files.size(sparse32), Files.size(sparse32) / (double) d);
    assertThat(Files.size(gz)).isLessThan(Files.size(sparse32)).isLessThan(Files.size(sparse64));
    if (sparsity == 0.5) {
      // 12 bytes per non-zero (float + int64 index) is more than 4 bytes per weight at 50%.
      assertThat(Files.size(sparse64)).isGreaterThan(d);
      assertThat(Files.size(gz)).isLessThan((long) (0.6 * d));
    } else {
      assertThat(Files.size(gz)).isLessThan((long) (0.3 * d));
    }
  }

  /** The model with every float initializer as a SparseTensorProto with linear indices of {@code width} bytes. */
  static ModelProto toSparse(ModelProto m, int width) {
    GraphProto.Builder g = m.getGraph().toBuilder().clearInitializer();
    for (TensorProto t : m.getGraph().getInitializerList()) {
      float[] w = OnnxTensors.toFloats(t);
      int nnz = 0;
      for (float v : w) {
        nnz += v != 0 ? 1 : 0;
      }
      float[] values = new float[nnz];
      ByteBuffer idx = ByteBuffer.allocate(nnz * width).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0, j = 0; i < w.length; i++) {
        if (w[i] != 0) {
          values[j++] = w[i];
          if (width == 8) {
            idx.putLong(i);
          } else {
            idx.putInt(i);
          }
        }
      }
      TensorProto indices = TensorProto.newBuilder()
          .setName(t.getName() + "_indices")
          .setDataType(width == 8 ? TensorProto.DataType.INT64_VALUE : TensorProto.DataType.INT32_VALUE)
          .addDims(nnz)
          .setRawData(com.google.protobuf.ByteString.copyFrom(idx.array()))
          .build();
      g.addSparseInitializer(SparseTensorProto.newBuilder()
          .setValues(OnnxTensors.floatTensor(t.getName(), values, nnz))
          .setIndices(indices)
          .addAllDims(t.getDimsList()));
    }
    return m.toBuilder().setGraph(g).build();
  }
}
