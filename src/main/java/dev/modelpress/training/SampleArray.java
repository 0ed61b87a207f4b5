package dev.modelpress.training;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Float32 samples stacked along the first dimension: {@code shape[0]} samples of {@code
 * sampleSize()} values each, row-major. The trainer copies batches out of it with {@code
 * System.arraycopy}, so a batch is the same bits whatever ND4J's threading does.
 *
 * @param data {@code shape[0] * sampleSize()} values, sample after sample
 * @param shape the full shape, samples first
 */
public record SampleArray(float[] data, long[] shape) {

  public SampleArray {
    shape = shape.clone();
    if (shape.length == 0) {
      throw new IllegalArgumentException("a sample array needs a sample dimension");
    }
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
      }
      n *= d;
    }
    if (n != data.length) {
      throw new IllegalArgumentException(
          "shape " + Arrays.toString(shape) + " holds " + n + " values, the data " + data.length);
    }
  }

  /**
   * A float32 {@link NdArray} (e.g. from an uploaded dataset) as samples; integer and boolean
   * arrays (token ids, attention masks) too, as exact floats: the trainer feeds them to the graph
   * in the input's own type. Integers beyond ±2^24, which a float cannot hold exactly, are refused.
   */
  public static SampleArray of(NdArray array) {
    float[] values = new float[Math.toIntExact(array.elementCount())];
    java.nio.ByteBuffer data = array.data().duplicate().order(ByteOrder.LITTLE_ENDIAN);
    switch (array.dtype()) {
      case FLOAT32 -> data.asFloatBuffer().get(values);
      case INT64, INT32, INT16, INT8, UINT8, BOOL -> {
        for (int i = 0; i < values.length; i++) {
          long v = switch (array.dtype()) {
            case INT64 -> data.getLong(8 * i);
            case INT32 -> data.getInt(4 * i);
            case INT16 -> data.getShort(2 * i);
            case INT8 -> data.get(i);
            default -> data.get(i) & 0xff;
          };
          if (Math.abs(v) > EXACT_INTEGER) {
            throw new IllegalArgumentException("array '" + array.name() + "' holds " + v
                + ", beyond the integers a float32 holds exactly (2^24)");
          }
          values[i] = v;
        }
      }
      default -> throw new IllegalArgumentException("array '" + array.name() + "' is " + array.dtype()
          + ", training needs float32 or integers");
    }
    return new SampleArray(values, array.shape());
  }

  private static final long EXACT_INTEGER = 1L << 24;

  /** Number of samples. */
  public int samples() {
    return Math.toIntExact(shape[0]);
  }

  /** Values per sample. */
  public int sampleSize() {
    return shape[0] == 0 ? 0 : data.length / samples();
  }

  /** The shape of one batch of {@code n} samples. */
  long[] batchShape(int n) {
    long[] s = shape.clone();
    s[0] = n;
    return s;
  }

  /** Copies the samples {@code indices[from..to)} into a new array, in that order. */
  float[] gather(int[] indices, int from, int to) {
    int size = sampleSize();
    float[] out = new float[(to - from) * size];
    for (int i = from; i < to; i++) {
      System.arraycopy(data, indices[i] * size, out, (i - from) * size, size);
    }
    return out;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SampleArray s && Arrays.equals(shape, s.shape) && Arrays.equals(data, s.data);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(shape) * 31 + Arrays.hashCode(data);
  }

  @Override
  public String toString() {
    return "SampleArray" + Arrays.toString(shape);
  }
}
