package dev.modelpress.evaluation;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The input tensors of one model run: samples {@code [from, to)} of every dataset array a model
 * reads, converted to the element type the model declares. Owns its tensors.
 */
final class BatchFeed implements AutoCloseable {

  private final Map<String, OnnxTensor> tensors = new LinkedHashMap<>();

  private BatchFeed() {}

  /**
   * Slices and converts the arrays for one batch.
   *
   * @param inputTypes the model's inputs and their declared element types
   * @param arrays dataset arrays by name, already checked with {@link InputCompatibility}
   */
  static BatchFeed of(
      OrtEnvironment env, Map<String, FeedType> inputTypes, Map<String, NdArray> arrays, long from, long to)
      throws EvaluationException, OrtException {
    BatchFeed feed = new BatchFeed();
    try {
      for (Map.Entry<String, FeedType> input : inputTypes.entrySet()) {
        NdArray array = arrays.get(input.getKey());
        long[] shape = array.shape();
        long row = 1;
        for (int i = 1; i < shape.length; i++) {
          row *= shape[i];
        }
        shape[0] = to - from;
        ByteBuffer data = convert(array, input.getKey(), input.getValue(), from * row, (to - from) * row);
        feed.tensors.put(
            input.getKey(), OnnxTensor.createTensor(env, data, shape, input.getValue().javaType));
      }
      return feed;
    } catch (EvaluationException | OrtException | RuntimeException e) {
      feed.close();
      throw e;
    }
  }

  Map<String, OnnxTensor> tensors() {
    return tensors;
  }

  /** Elements {@code [first, first + count)} of the array as a direct native-order buffer of {@code target}. */
  private static ByteBuffer convert(NdArray array, String input, FeedType target, long first, long count)
      throws EvaluationException {
    ByteBuffer source = array.data();
    DType dtype = array.dtype();
    ByteBuffer out = ByteBuffer.allocateDirect(Math.toIntExact(count * target.size)).order(ByteOrder.nativeOrder());
    if (target.size == dtype.size() && sameEncoding(dtype, target) && ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
      // Same encoding and byte order: the common case (float32 features, int64 token ids) is one copy.
      int start = Math.toIntExact(first * dtype.size());
      out.put(source.slice(start, Math.toIntExact(count * dtype.size())));
      return out.flip();
    }
    for (long i = 0; i < count; i++) {
      long at = first + i;
      switch (target) {
        case FLOAT -> out.putFloat((float) FeedType.readDouble(source, dtype, at));
        case DOUBLE -> out.putDouble(FeedType.readDouble(source, dtype, at));
        case FLOAT16 -> out.putShort(Float.floatToFloat16((float) FeedType.readDouble(source, dtype, at)));
        case BOOL -> out.put((byte) (FeedType.readLong(source, dtype, at) != 0 ? 1 : 0));
        default -> {
          long v = FeedType.readLong(source, dtype, at);
          if (v < target.minValue() || v > target.maxValue()) {
            throw new EvaluationException(
                "dataset array '" + array.name() + "' holds " + v + " at element " + at
                    + ", which does not fit model input '" + input + "' of type " + target);
          }
          switch (target) {
            case INT8, UINT8 -> out.put((byte) v);
            case INT16 -> out.putShort((short) v);
            case INT32 -> out.putInt((int) v);
            default -> out.putLong(v);
          }
        }
      }
    }
    return out.flip();
  }

  private static boolean sameEncoding(DType d, FeedType t) {
    return switch (t) {
      case FLOAT -> d == DType.FLOAT32;
      case DOUBLE -> d == DType.FLOAT64;
      case FLOAT16 -> d == DType.FLOAT16;
      case INT8 -> d == DType.INT8;
      case UINT8 -> d == DType.UINT8;
      case INT16 -> d == DType.INT16;
      case INT32 -> d == DType.INT32;
      case INT64 -> d == DType.INT64;
      case BOOL -> d == DType.BOOL;
    };
  }

  @Override
  public void close() {
    for (OnnxTensor t : tensors.values()) {
      t.close();
    }
    tensors.clear();
  }
}
