package dev.modelpress.evaluation;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.OperatorSetIdProto;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorShapeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TypeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import com.google.protobuf.ByteString;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** Small ONNX models written with the protobuf classes, for evaluator tests. */
final class TestModels {

  private TestModels() {}

  /** {@code logits = x · w + b} with {@code x: FLOAT [batch, in]} and {@code logits: FLOAT [batch, classes]}. */
  static ModelProto gemmClassifier(float[][] w, float[] b) {
    int in = w.length;
    int classes = b.length;
    GraphProto.Builder graph = GraphProto.newBuilder()
        .setName("classifier")
        .addInput(tensorValue("x", TensorProto.DataType.FLOAT, "batch", in))
        .addOutput(tensorValue("logits", TensorProto.DataType.FLOAT, "batch", classes))
        .addInitializer(floats("W", w))
        .addInitializer(floats("B", new float[][] {b}).toBuilder().clearDims().addDims(classes))
        .addNode(node("Gemm", "gemm", new String[] {"x", "W", "B"}, "logits"));
    return model(graph);
  }

  /**
   * The classifier with {@code count} chained {@code in × in} MatMuls by the identity before its
   * Gemm: the same function, much more work.
   */
  static ModelProto withIdentityMatMuls(ModelProto classifier, int count) {
    GraphProto g = classifier.getGraph();
    int in = (int) g.getInput(0).getType().getTensorType().getShape().getDim(1).getDimValue();
    float[][] identity = new float[in][in];
    for (int i = 0; i < in; i++) {
      identity[i][i] = 1;
    }
    GraphProto.Builder graph = g.toBuilder().clearNode().addInitializer(floats("I", identity));
    String previous = "x";
    for (int i = 0; i < count; i++) {
      String out = "h" + i;
      graph.addNode(node("MatMul", "identity" + i, new String[] {previous, "I"}, out));
      previous = out;
    }
    graph.addNode(node("Gemm", "gemm", new String[] {previous, "W", "B"}, "logits"));
    return classifier.toBuilder().setGraph(graph).build();
  }

  /**
   * The classifier with its logits reshaped to a fixed shape: it loads, but fails at run time on a
   * batch whose element count does not fit.
   */
  static ModelProto withReshapeTo(ModelProto classifier, long... shape) {
    TensorProto.Builder target = TensorProto.newBuilder()
        .setName("target_shape")
        .setDataType(TensorProto.DataType.INT64_VALUE)
        .addDims(shape.length);
    for (long d : shape) {
      target.addInt64Data(d);
    }
    GraphProto.Builder graph = classifier.getGraph().toBuilder().clearNode()
        .addInitializer(target)
        .addNode(node("Gemm", "gemm", new String[] {"x", "W", "B"}, "scores"))
        .addNode(node("Reshape", "reshape", new String[] {"scores", "target_shape"}, "logits"));
    return classifier.toBuilder().setGraph(graph).build();
  }

  /** {@code y = Cast<float>(ids)} with {@code ids: INT64 [batch, n]}. */
  static ModelProto castToFloat(int n) {
    NodeProto cast = node("Cast", "cast", new String[] {"ids"}, "y").toBuilder()
        .addAttribute(AttributeProto.newBuilder().setName("to").setType(AttributeProto.AttributeType.INT)
            .setI(TensorProto.DataType.FLOAT_VALUE))
        .build();
    GraphProto.Builder graph = GraphProto.newBuilder()
        .setName("cast")
        .addInput(tensorValue("ids", TensorProto.DataType.INT64, "batch", n))
        .addOutput(tensorValue("y", TensorProto.DataType.FLOAT, "batch", n))
        .addNode(cast);
    return model(graph);
  }

  /** A copy of the model with every element of one float initializer multiplied by {@code factor}. */
  static ModelProto scaleInitializer(ModelProto model, String name, float factor) {
    GraphProto.Builder graph = model.getGraph().toBuilder();
    for (int i = 0; i < graph.getInitializerCount(); i++) {
      TensorProto t = graph.getInitializer(i);
      if (!t.getName().equals(name)) {
        continue;
      }
      TensorProto.Builder scaled = t.toBuilder().clearFloatData().clearRawData();
      if (t.hasRawData()) {
        ByteBuffer src = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer dst = ByteBuffer.allocate(src.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        while (src.hasRemaining()) {
          dst.putFloat(src.getFloat() * factor);
        }
        scaled.setRawData(ByteString.copyFrom(dst.flip()));
      } else {
        t.getFloatDataList().forEach(f -> scaled.addFloatData(f * factor));
      }
      graph.setInitializer(i, scaled);
      return model.toBuilder().setGraph(graph).build();
    }
    throw new IllegalArgumentException("no initializer " + name);
  }

  /** The name of the weight initializer that the first MatMul of the graph reads. */
  static String firstMatMulWeight(ModelProto model) {
    var initializers = model.getGraph().getInitializerList().stream().map(TensorProto::getName).toList();
    return model.getGraph().getNodeList().stream()
        .filter(n -> n.getOpType().equals("MatMul") && initializers.contains(n.getInput(1)))
        .map(n -> n.getInput(1))
        .findFirst()
        .orElseThrow();
  }

  static Path write(ModelProto model, Path dir, String name) throws IOException {
    Path file = dir.resolve(name);
    try (var out = Files.newOutputStream(file)) {
      model.writeTo(out);
    }
    return file;
  }

  static ModelProto read(Path file) throws IOException {
    try (var in = Files.newInputStream(file)) {
      return ModelProto.parseFrom(in);
    }
  }

  /** A float32 dataset array of shape {@code [rows, cols]}. */
  static NdArray floatArray(String name, float[][] rows) {
    ByteBuffer data = ByteBuffer.allocate(rows.length * rows[0].length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float[] row : rows) {
      for (float v : row) {
        data.putFloat(v);
      }
    }
    return new NdArray(name, DType.FLOAT32, new long[] {rows.length, rows[0].length}, data.flip());
  }

  /** A float64 dataset array of shape {@code [rows, cols]}. */
  static NdArray doubleArray(String name, float[][] rows) {
    ByteBuffer data = ByteBuffer.allocate(rows.length * rows[0].length * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (float[] row : rows) {
      for (float v : row) {
        data.putDouble(v);
      }
    }
    return new NdArray(name, DType.FLOAT64, new long[] {rows.length, rows[0].length}, data.flip());
  }

  /** A 1-D integer array of the given dtype ({@code INT32} or {@code INT64}). */
  static NdArray intArray(String name, DType dtype, long... values) {
    ByteBuffer data = ByteBuffer.allocate(values.length * dtype.size()).order(ByteOrder.LITTLE_ENDIAN);
    for (long v : values) {
      if (dtype == DType.INT32) {
        data.putInt((int) v);
      } else {
        data.putLong(v);
      }
    }
    return new NdArray(name, dtype, new long[] {values.length}, data.flip());
  }

  private static ModelProto model(GraphProto.Builder graph) {
    return ModelProto.newBuilder()
        .setIrVersion(8)
        .setProducerName("modelpress-tests")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(13))
        .setGraph(graph)
        .build();
  }

  private static NodeProto node(String op, String name, String[] inputs, String output) {
    NodeProto.Builder n = NodeProto.newBuilder().setOpType(op).setName(name).addOutput(output);
    for (String in : inputs) {
      n.addInput(in);
    }
    return n.build();
  }

  private static ValueInfoProto tensorValue(String name, TensorProto.DataType type, String batch, long width) {
    TensorShapeProto shape = TensorShapeProto.newBuilder()
        .addDim(TensorShapeProto.Dimension.newBuilder().setDimParam(batch))
        .addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(width))
        .build();
    return ValueInfoProto.newBuilder()
        .setName(name)
        .setType(TypeProto.newBuilder().setTensorType(
            TypeProto.Tensor.newBuilder().setElemType(type.getNumber()).setShape(shape)))
        .build();
  }

  private static TensorProto floats(String name, float[][] rows) {
    ByteBuffer data = ByteBuffer.allocate(rows.length * rows[0].length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float[] row : rows) {
      for (float v : row) {
        data.putFloat(v);
      }
    }
    return TensorProto.newBuilder()
        .setName(name)
        .setDataType(TensorProto.DataType.FLOAT_VALUE)
        .addDims(rows.length)
        .addDims(rows[0].length)
        .setRawData(ByteString.copyFrom(data.flip()))
        .build();
  }
}
