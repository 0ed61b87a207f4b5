package dev.modelpress.format.npy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A named n-dimensional array in C order: element type, shape and little-endian data.
 *
 * @param name the array's name (an npz entry without {@code .npy})
 * @param dtype the element type
 * @param shape the dimensions; an empty array for a scalar
 * @param data exactly {@code elementCount() * dtype.size()} bytes, little-endian, position 0
 */
public record NdArray(String name, DType dtype, long[] shape, ByteBuffer data) {

  public NdArray {
    shape = shape.clone();
    data = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Number of elements: the product of the shape. */
  public long elementCount() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  @Override
  public ByteBuffer data() {
    return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
  }

  @Override
  public String toString() {
    return name + ":" + dtype + Arrays.toString(shape);
  }
}
