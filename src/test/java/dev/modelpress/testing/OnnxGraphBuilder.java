package dev.modelpress.testing;

import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.OperatorSetIdProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorShapeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TypeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Builds small, valid ONNX models for tests, fluently:
 *
 * <pre>{@code
 * ModelProto m = OnnxGraphBuilder.opset(13)
 *     .input("x", 2, 4)
 *     .initializer("W", weights, 4, 3)
 *     .matMul("x", "W", "y")
 *     .output("y")
 *     .build();
 * }</pre>
 *
 * Dims given as {@code long} are fixed; {@link #inputSymbolic} declares named dynamic dims.
 * Element types are FLOAT unless a method says otherwise.
 */
public final class OnnxGraphBuilder {

  private final long opset;
  private final GraphProto.Builder graph = GraphProto.newBuilder().setName("test");
  private long irVersion = 8;
  private int nodeCounter;

  private OnnxGraphBuilder(long opset) {
    this.opset = opset;
  }

  /** A builder for a model importing the given ai.onnx opset. */
  public static OnnxGraphBuilder opset(long version) {
    return new OnnxGraphBuilder(version);
  }

  /** Sets the IR version (default 8, which ONNX Runtime 1.28 accepts with any opset used here). */
  public OnnxGraphBuilder irVersion(long version) {
    this.irVersion = version;
    return this;
  }

  /** A FLOAT graph input with fixed dims. */
  public OnnxGraphBuilder input(String name, long... dims) {
    return input(name, TensorProto.DataType.FLOAT, dims);
  }

  /** A graph input of the given element type with fixed dims. */
  public OnnxGraphBuilder input(String name, TensorProto.DataType type, long... dims) {
    TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
    for (long d : dims) {
      shape.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(d));
    }
    graph.addInput(valueInfo(name, type, shape));
    return this;
  }

  /** A graph input whose dims are numbers ({@code Long}/{@code Integer}) or symbols ({@code String}). */
  public OnnxGraphBuilder inputSymbolic(String name, TensorProto.DataType type, Object... dims) {
    TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
    for (Object d : dims) {
      TensorShapeProto.Dimension.Builder dim = TensorShapeProto.Dimension.newBuilder();
      if (d instanceof Number n) {
        dim.setDimValue(n.longValue());
      } else {
        dim.setDimParam(d.toString());
      }
      shape.addDim(dim);
    }
    graph.addInput(valueInfo(name, type, shape));
    return this;
  }

  /** A FLOAT graph output of unknown shape (ONNX Runtime infers it). */
  public OnnxGraphBuilder output(String name) {
    return output(name, TensorProto.DataType.FLOAT);
  }

  /** A graph output of the given element type and unknown shape. */
  public OnnxGraphBuilder output(String name, TensorProto.DataType type) {
    graph.addOutput(ValueInfoProto.newBuilder()
        .setName(name)
        .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(type.getNumber()))));
    return this;
  }

  /** A graph output with a declared shape: numbers ({@code Long}/{@code Integer}) or symbols ({@code String}). */
  public OnnxGraphBuilder outputSymbolic(String name, TensorProto.DataType type, Object... dims) {
    TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
    for (Object d : dims) {
      TensorShapeProto.Dimension.Builder dim = TensorShapeProto.Dimension.newBuilder();
      if (d instanceof Number n) {
        dim.setDimValue(n.longValue());
      } else {
        dim.setDimParam(d.toString());
      }
      shape.addDim(dim);
    }
    graph.addOutput(valueInfo(name, type, shape));
    return this;
  }

  /** A FLOAT initializer. */
  public OnnxGraphBuilder initializer(String name, float[] values, long... dims) {
    graph.addInitializer(OnnxTensors.floatTensor(name, values, dims));
    return this;
  }

  /** An INT64 initializer (indices, shapes). */
  public OnnxGraphBuilder int64Initializer(String name, long[] values, long... dims) {
    TensorProto.Builder t = TensorProto.newBuilder()
        .setName(name)
        .setDataType(TensorProto.DataType.INT64_VALUE);
    for (long d : dims) {
      t.addDims(d);
    }
    for (long v : values) {
      t.addInt64Data(v);
    }
    graph.addInitializer(t);
    return this;
  }

  /** Any initializer, as given (for hostile or unusual tensors). */
  public OnnxGraphBuilder initializer(TensorProto tensor) {
    graph.addInitializer(tensor);
    return this;
  }

  /** Declares an initializer also as a graph input, as models before IR 4 had to. */
  public OnnxGraphBuilder initializerAlsoInput(String name, long... dims) {
    return input(name, dims);
  }

  /** A node of the default domain with the given attributes. */
  public OnnxGraphBuilder node(String opType, List<String> inputs, List<String> outputs, AttributeProto... attributes) {
    graph.addNode(NodeProto.newBuilder()
        .setName(opType + "_" + nodeCounter++)
        .setOpType(opType)
        .addAllInput(inputs)
        .addAllOutput(outputs)
        .addAllAttribute(List.of(attributes)));
    return this;
  }

  public OnnxGraphBuilder matMul(String a, String b, String out) {
    return node("MatMul", List.of(a, b), List.of(out));
  }

  /** {@code Gemm(a, b, c)} with {@code transB}; pass {@code c = null} for no bias. */
  public OnnxGraphBuilder gemm(String a, String b, String c, String out, boolean transB) {
    List<String> in = c == null ? List.of(a, b) : List.of(a, b, c);
    return node("Gemm", in, List.of(out), intAttr("transB", transB ? 1 : 0));
  }

  /** {@code Conv(x, w[, b])} with the given pads (same on both ends of each spatial axis). */
  public OnnxGraphBuilder conv(String x, String w, String b, String out, long pad) {
    List<String> in = b == null ? List.of(x, w) : List.of(x, w, b);
    return node("Conv", in, List.of(out), intsAttr("pads", pad, pad, pad, pad));
  }

  /** {@code MaxPool(x)} with a square kernel and stride, no padding. */
  public OnnxGraphBuilder maxPool(String x, String out, long kernel, long stride) {
    return node("MaxPool", List.of(x), List.of(out),
        intsAttr("kernel_shape", kernel, kernel), intsAttr("strides", stride, stride));
  }

  /** {@code Flatten(x)}: dims before {@code axis} become the rows, the rest the columns. */
  public OnnxGraphBuilder flatten(String x, String out, long axis) {
    return node("Flatten", List.of(x), List.of(out), intAttr("axis", axis));
  }

  public OnnxGraphBuilder add(String a, String b, String out) {
    return node("Add", List.of(a, b), List.of(out));
  }

  public OnnxGraphBuilder relu(String x, String out) {
    return node("Relu", List.of(x), List.of(out));
  }

  public OnnxGraphBuilder gather(String data, String indices, String out) {
    return node("Gather", List.of(data, indices), List.of(out));
  }

  /** A {@code Constant} node whose {@code value} is a FLOAT tensor. */
  public OnnxGraphBuilder constant(String out, float[] values, long... dims) {
    AttributeProto value = AttributeProto.newBuilder()
        .setName("value")
        .setType(AttributeProto.AttributeType.TENSOR)
        .setT(OnnxTensors.floatTensor(out, values, dims))
        .build();
    return node("Constant", List.of(), List.of(out), value);
  }

  public static AttributeProto intAttr(String name, long value) {
    return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INT).setI(value).build();
  }

  public static AttributeProto intsAttr(String name, long... values) {
    AttributeProto.Builder a = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INTS);
    for (long v : values) {
      a.addInts(v);
    }
    return a.build();
  }

  public static AttributeProto floatAttr(String name, float value) {
    return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.FLOAT).setF(value).build();
  }

  /** The model. The builder may be used again afterwards. */
  public ModelProto build() {
    return ModelProto.newBuilder()
        .setIrVersion(irVersion)
        .setProducerName("modelpress-test")
        .setProducerVersion("1")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset))
        .setGraph(graph.clone())
        .build();
  }

  /** Writes the model to a new file in {@code dir} and returns its path. */
  public Path writeTo(Path dir) {
    return write(build(), dir);
  }

  /** Writes any model to a new {@code .onnx} file in {@code dir}. */
  public static Path write(ModelProto model, Path dir) {
    try {
      Path file = Files.createTempFile(dir, "model", ".onnx");
      OnnxModels.write(model, file);
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A deterministic pseudo-random float array in [-scale, scale). */
  public static float[] randomFloats(long seed, int n, float scale) {
    java.util.Random r = new java.util.Random(seed);
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (r.nextFloat() * 2 - 1) * scale;
    }
    return a;
  }

  private static ValueInfoProto valueInfo(String name, TensorProto.DataType type, TensorShapeProto.Builder shape) {
    return ValueInfoProto.newBuilder()
        .setName(name)
        .setType(TypeProto.newBuilder()
            .setTensorType(TypeProto.Tensor.newBuilder().setElemType(type.getNumber()).setShape(shape)))
        .build();
  }
}
