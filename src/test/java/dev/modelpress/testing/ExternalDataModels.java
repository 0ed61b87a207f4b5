package dev.modelpress.testing;

import dev.modelpress.format.onnx.ExternalDataWriter;
import dev.modelpress.format.onnx.OnnxExternalData;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.SplittableRandom;

/** Builds ONNX models whose weights live in an external data file, for tests. */
public final class ExternalDataModels {

  private ExternalDataModels() {}

  /**
   * Writes {@code model} to {@code dir/name} with every initializer of at least {@code minBytes}
   * raw bytes moved to {@code dir/name.data}.
   */
  public static Path externalize(ModelProto model, Path dir, String name, long minBytes) throws IOException {
    Path file = dir.resolve(name);
    GraphProto.Builder g = model.getGraph().toBuilder().clearInitializer();
    try (ExternalDataWriter data = ExternalDataWriter.create(dir.resolve(name + ".data"))) {
      for (TensorProto t : model.getGraph().getInitializerList()) {
        if (t.hasRawData() && t.getRawData().size() >= minBytes) {
          g.addInitializer(data.copy(t, MemorySegment.ofBuffer(t.getRawData().asReadOnlyByteBuffer())));
        } else {
          g.addInitializer(t);
        }
      }
    }
    OnnxModels.write(model.toBuilder().setGraph(g).build(), file);
    return file;
  }

  /**
   * Streams a chain {@code y = x · W0 · W1 · … · W(layers-1)} of {@code k × k} FLOAT MatMuls into
   * {@code dir/model.onnx} + {@code dir/model.onnx.data}, never holding more than one 4 MiB chunk:
   * weights uniform in ±sqrt(3/k) so activations keep unit variance through the chain.
   */
  public static Path matMulChain(Path dir, int layers, int k, long seed) throws IOException {
    return matMulChain(dir, layers, k, seed, 17);
  }

  /** As {@link #matMulChain(Path, int, int, long)} with the model importing ai.onnx {@code opset}. */
  public static Path matMulChain(Path dir, int layers, int k, long seed, long opset) throws IOException {
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(opset).input("x", 1, k).output("y");
    float a = (float) Math.sqrt(3.0 / k);
    ByteBuffer chunk = ByteBuffer.allocateDirect(1 << 22).order(ByteOrder.LITTLE_ENDIAN);
    GraphProto.Builder weights = GraphProto.newBuilder();
    try (ExternalDataWriter data = ExternalDataWriter.create(dir.resolve("model.onnx.data"))) {
      for (int l = 0; l < layers; l++) {
        SplittableRandom r = new SplittableRandom(seed + l);
        data.begin();
        long n = (long) k * k;
        for (long i = 0; i < n; i++) {
          chunk.putFloat((float) ((r.nextDouble() * 2 - 1) * a));
          if (!chunk.hasRemaining()) {
            data.write(chunk.flip());
            chunk.clear();
          }
        }
        data.write(chunk.flip());
        chunk.clear();
        weights.addInitializer(data.end(TensorProto.newBuilder().setName("W" + l)
            .setDataType(TensorProto.DataType.FLOAT_VALUE).addDims(k).addDims(k).build()));
        b.matMul(l == 0 ? "x" : "h" + (l - 1), "W" + l, l == layers - 1 ? "y" : "h" + l);
      }
    }
    ModelProto skeleton = b.build();
    ModelProto model = skeleton.toBuilder()
        .setGraph(skeleton.getGraph().toBuilder().addAllInitializer(weights.getInitializerList()))
        .build();
    Path file = dir.resolve("model.onnx");
    OnnxModels.write(model, file);
    return file;
  }

  /** {@code x · W} for a row vector x and a row-major [k, n] FLOAT matrix read from a mapping. */
  public static float[] rowTimes(float[] x, MemorySegment w, int n) {
    double[] acc = new double[n];
    float[] row = new float[n];
    for (int i = 0; i < x.length; i++) {
      MemorySegment.copy(w, java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN),
          (long) i * n * 4, row, 0, n);
      double xi = x[i];
      for (int j = 0; j < n; j++) {
        acc[j] += xi * row[j];
      }
    }
    float[] y = new float[n];
    for (int j = 0; j < n; j++) {
      y[j] = (float) acc[j];
    }
    return y;
  }

  /** The tensor's bytes from a model opened with external data. */
  public static MemorySegment bytes(OnnxExternalData model, String initializer) {
    for (TensorProto t : model.model().getGraph().getInitializerList()) {
      if (t.getName().equals(initializer)) {
        return model.data(t);
      }
    }
    throw new IllegalArgumentException("no initializer " + initializer);
  }
}
