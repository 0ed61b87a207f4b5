package dev.modelpress.training;

import dev.modelpress.compression.CompressionException;
import dev.modelpress.format.onnx.OnnxExternalData;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** ONNX tensors as ND4J arrays and back, one tensor at a time. */
final class TensorArrays {

  private TensorArrays() {}

  /** The ND4J type computing an ONNX element type, or null when the translator has none for it. */
  static DataType dataType(int onnxType) {
    return switch (TensorProto.DataType.forNumber(onnxType)) {
      case FLOAT -> DataType.FLOAT;
      case DOUBLE -> DataType.DOUBLE;
      case INT64 -> DataType.LONG;
      case INT32 -> DataType.INT;
      case BOOL -> DataType.BOOL;
      case null, default -> null;
    };
  }

  /**
   * The tensor's values in an array of its own shape (a scalar for rank 0). FLOAT, DOUBLE, INT64,
   * INT32 and BOOL are read from {@code raw_data} (little-endian) or the typed field.
   *
   * @throws CompressionException for other element types, external data or empty tensors
   */
  static INDArray toArray(TensorProto t, String what) {
    if (OnnxExternalData.isExternal(t)) {
      throw new CompressionException(what + " keeps its data in an external file; training needs the"
          + " weights inside the model");
    }
    DataType type = dataType(t.getDataType());
    if (type == null) {
      throw new CompressionException(what + " is " + OnnxTensors.dataTypeName(t.getDataType())
          + "; training supports FLOAT, DOUBLE, INT64, INT32 and BOOL tensors");
    }
    long[] shape = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
    long count = OnnxTensors.elementCount(t.getDimsList());
    if (count <= 0 || count > Integer.MAX_VALUE - 8) {
      throw new CompressionException(what + " has " + (count == 0 ? "no elements" : "too many elements")
          + " (dims " + t.getDimsList() + ")");
    }
    int n = (int) count;
    ByteBuffer raw = t.hasRawData() ? t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN) : null;
    INDArray flat = switch (type) {
      case FLOAT -> {
        float[] v = OnnxTensors.toFloats(t);
        yield Nd4j.createFromArray(v);
      }
      case DOUBLE -> {
        double[] v = new double[n];
        if (raw != null) {
          raw.asDoubleBuffer().get(v);
        } else {
          fill(v, t.getDoubleDataList());
        }
        yield Nd4j.createFromArray(v);
      }
      case LONG -> {
        long[] v = new long[n];
        if (raw != null) {
          raw.asLongBuffer().get(v);
        } else {
          for (int i = 0; i < n; i++) {
            v[i] = t.getInt64Data(i);
          }
        }
        yield Nd4j.createFromArray(v);
      }
      case INT -> {
        int[] v = new int[n];
        if (raw != null) {
          raw.asIntBuffer().get(v);
        } else {
          for (int i = 0; i < n; i++) {
            v[i] = t.getInt32Data(i);
          }
        }
        yield Nd4j.createFromArray(v);
      }
      case BOOL -> {
        boolean[] v = new boolean[n];
        for (int i = 0; i < n; i++) {
          // The schema stores BOOL as one byte each in raw_data, or as int32_data entries.
          v[i] = raw != null ? raw.get(i) != 0 : t.getInt32Data(i) != 0;
        }
        yield Nd4j.createFromArray(v);
      }
      default -> throw new IllegalStateException("unreachable: " + type);
    };
    if (shape.length == 0) {
      return switch (type) {
        case FLOAT, DOUBLE -> Nd4j.scalar(type, flat.getDouble(0));
        case LONG, INT -> Nd4j.scalar(type, flat.getLong(0));
        default -> Nd4j.scalar(flat.getDouble(0) != 0);
      };
    }
    return flat.reshape('c', shape);
  }

  private static void fill(double[] into, List<Double> from) {
    for (int i = 0; i < into.length; i++) {
      into[i] = from.get(i);
    }
  }

  /** The array's values as floats in row-major order, whatever its layout or view offset. */
  static float[] floats(INDArray array) {
    INDArray c = array.dataType() == DataType.FLOAT ? array : array.castTo(DataType.FLOAT);
    return c.dup('c').reshape(c.length()).toFloatVector();
  }
}
