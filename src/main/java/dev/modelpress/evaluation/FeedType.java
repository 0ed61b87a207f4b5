package dev.modelpress.evaluation;

import ai.onnxruntime.OnnxJavaType;
import dev.modelpress.format.npy.DType;
import java.nio.ByteBuffer;

/**
 * The ONNX element types modelpress can feed to a model input, and which dataset dtypes convert to
 * each without changing a value. Integer narrowing (int64 data for an int32 input) is accepted here
 * and range-checked value by value when the data is fed; float64 data for a float32 or float16
 * input is rounded, because NumPy makes float64 by default and the rounding is what the user
 * expects.
 */
enum FeedType {
  FLOAT(OnnxJavaType.FLOAT, 4),
  DOUBLE(OnnxJavaType.DOUBLE, 8),
  FLOAT16(OnnxJavaType.FLOAT16, 2),
  INT8(OnnxJavaType.INT8, 1),
  UINT8(OnnxJavaType.UINT8, 1),
  INT16(OnnxJavaType.INT16, 2),
  INT32(OnnxJavaType.INT32, 4),
  INT64(OnnxJavaType.INT64, 8),
  BOOL(OnnxJavaType.BOOL, 1);

  final OnnxJavaType javaType;
  final int size;

  FeedType(OnnxJavaType javaType, int size) {
    this.javaType = javaType;
    this.size = size;
  }

  /** The feedable type with this ONNX name, or {@code null}. */
  static FeedType byOnnxName(String onnxName) {
    for (FeedType t : values()) {
      if (t.name().equals(onnxName)) {
        return t;
      }
    }
    return null;
  }

  boolean isFloatingPoint() {
    return this == FLOAT || this == DOUBLE || this == FLOAT16;
  }

  boolean isInteger() {
    return this == INT8 || this == UINT8 || this == INT16 || this == INT32 || this == INT64;
  }

  static boolean isInteger(DType d) {
    return d == DType.INT8 || d == DType.UINT8 || d == DType.INT16 || d == DType.INT32 || d == DType.INT64;
  }

  static boolean isFloatingPoint(DType d) {
    return d == DType.FLOAT16 || d == DType.FLOAT32 || d == DType.FLOAT64;
  }

  /** Whether data of this dtype can feed this input type (integer narrowing pending a range check). */
  boolean accepts(DType source) {
    return switch (this) {
      // Integers up to 16 bits are exact in float32 and float64; int32 is exact in float64 only.
      case FLOAT -> isFloatingPoint(source) || source == DType.INT8 || source == DType.UINT8 || source == DType.INT16;
      case DOUBLE -> isFloatingPoint(source) || (isInteger(source) && source != DType.INT64);
      case FLOAT16 -> isFloatingPoint(source);
      case INT8, UINT8, INT16, INT32, INT64 -> isInteger(source) || source == DType.BOOL;
      case BOOL -> source == DType.BOOL;
    };
  }

  long minValue() {
    return switch (this) {
      case INT8 -> Byte.MIN_VALUE;
      case UINT8 -> 0;
      case INT16 -> Short.MIN_VALUE;
      case INT32 -> Integer.MIN_VALUE;
      default -> Long.MIN_VALUE;
    };
  }

  long maxValue() {
    return switch (this) {
      case INT8 -> Byte.MAX_VALUE;
      case UINT8 -> 255;
      case INT16 -> Short.MAX_VALUE;
      case INT32 -> Integer.MAX_VALUE;
      default -> Long.MAX_VALUE;
    };
  }

  /** Element {@code index} of little-endian data of type {@code d}, as an integer. */
  static long readLong(ByteBuffer data, DType d, long index) {
    int at = Math.toIntExact(index * d.size());
    return switch (d) {
      case INT8 -> data.get(at);
      case UINT8 -> data.get(at) & 0xFF;
      case BOOL -> data.get(at) != 0 ? 1 : 0;
      case INT16 -> data.getShort(at);
      case INT32 -> data.getInt(at);
      case INT64 -> data.getLong(at);
      default -> throw new IllegalArgumentException(d + " is not an integer type");
    };
  }

  /** Element {@code index} of little-endian data of type {@code d}, as a double (exact for every dtype but int64). */
  static double readDouble(ByteBuffer data, DType d, long index) {
    int at = Math.toIntExact(index * d.size());
    return switch (d) {
      case FLOAT16 -> Float.float16ToFloat(data.getShort(at));
      case FLOAT32 -> data.getFloat(at);
      case FLOAT64 -> data.getDouble(at);
      default -> readLong(data, d, index);
    };
  }
}
