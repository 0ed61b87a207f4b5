package dev.modelpress.format.onnx;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto.DataType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.util.List;

/**
 * Element types of ONNX tensors and conversions between floating-point initializers and
 * {@code float[]}, one tensor at a time.
 */
public final class OnnxTensors {

  private OnnxTensors() {}

  /** The element type's name as the ONNX schema spells it ({@code FLOAT}, {@code INT8}, …). */
  public static String dataTypeName(int dataType) {
    DataType t = DataType.forNumber(dataType);
    return t == null ? "UNKNOWN(" + dataType + ")" : t.name();
  }

  /** Whether the type is FLOAT, FLOAT16, BFLOAT16 or DOUBLE (the types weights are stored in). */
  public static boolean isFloatingPoint(String dtypeName) {
    return switch (dtypeName) {
      case "FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE" -> true;
      default -> false;
    };
  }

  /** Number of elements the dims declare; -1 if a dim is negative or the product overflows. */
  public static long elementCount(List<Long> dims) {
    long n = 1;
    try {
      for (long d : dims) {
        if (d < 0) {
          return -1;
        }
        n = Math.multiplyExact(n, d);
      }
    } catch (ArithmeticException overflow) {
      return -1;
    }
    return n;
  }

  /**
   * The values of a FLOAT or FLOAT16 initializer, from {@code raw_data} (little-endian) or the
   * typed field. The caller has validated the tensor (see {@link OnnxModels#read}).
   *
   * @throws IllegalArgumentException for other element types or tensors over 2^31 elements
   */
  public static float[] toFloats(TensorProto t) {
    long n = elementCount(t.getDimsList());
    if (n < 0 || n > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("tensor '" + t.getName() + "' is too large to load");
    }
    float[] out = new float[(int) n];
    if (t.getDataType() == DataType.FLOAT_VALUE) {
      if (t.hasRawData()) {
        rawLittleEndian(t).asFloatBuffer().get(out);
      } else {
        for (int i = 0; i < out.length; i++) {
          out[i] = t.getFloatData(i);
        }
      }
    } else if (t.getDataType() == DataType.FLOAT16_VALUE) {
      if (t.hasRawData()) {
        ShortBuffer halves = rawLittleEndian(t).asShortBuffer();
        for (int i = 0; i < out.length; i++) {
          out[i] = Float.float16ToFloat(halves.get(i));
        }
      } else {
        // The schema stores each FLOAT16 as the low 16 bits of an int32_data entry.
        for (int i = 0; i < out.length; i++) {
          out[i] = Float.float16ToFloat((short) t.getInt32Data(i));
        }
      }
    } else {
      throw new IllegalArgumentException(
          "tensor '" + t.getName() + "' is " + dataTypeName(t.getDataType()) + ", not FLOAT or FLOAT16");
    }
    return out;
  }

  /**
   * A copy of {@code like} (name, dims, element type, doc) holding {@code values} as raw data. For
   * FLOAT16 the values are rounded to half precision, which is exact for values read from one.
   */
  public static TensorProto withFloats(TensorProto like, float[] values) {
    ByteString raw;
    if (like.getDataType() == DataType.FLOAT_VALUE) {
      raw = floatBytes(values);
    } else if (like.getDataType() == DataType.FLOAT16_VALUE) {
      ByteBuffer buf = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
      for (float v : values) {
        buf.putShort(Float.floatToFloat16(v));
      }
      raw = UnsafeByteOperations.unsafeWrap(buf.array());
    } else {
      throw new IllegalArgumentException(
          "tensor '" + like.getName() + "' is " + dataTypeName(like.getDataType()) + ", not FLOAT or FLOAT16");
    }
    return like.toBuilder()
        .clearFloatData()
        .clearInt32Data()
        .setRawData(raw)
        .build();
  }

  /** A FLOAT initializer with the given name, dims and values. */
  public static TensorProto floatTensor(String name, float[] values, long... dims) {
    return TensorProto.newBuilder()
        .setName(name)
        .setDataType(DataType.FLOAT_VALUE)
        .addAllDims(boxed(dims))
        .setRawData(floatBytes(values))
        .build();
  }

  /** An INT8 initializer with the given name, dims and values. */
  public static TensorProto int8Tensor(String name, byte[] values, long... dims) {
    return TensorProto.newBuilder()
        .setName(name)
        .setDataType(DataType.INT8_VALUE)
        .addAllDims(boxed(dims))
        // The array is freshly built by the caller and never written again, so wrapping is safe.
        .setRawData(UnsafeByteOperations.unsafeWrap(values))
        .build();
  }

  private static ByteString floatBytes(float[] values) {
    ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    buf.asFloatBuffer().put(values);
    return UnsafeByteOperations.unsafeWrap(buf.array());
  }

  private static ByteBuffer rawLittleEndian(TensorProto t) {
    return t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  private static List<Long> boxed(long[] dims) {
    return java.util.Arrays.stream(dims).boxed().toList();
  }
}
