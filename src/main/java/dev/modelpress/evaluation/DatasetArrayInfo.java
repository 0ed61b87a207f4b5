package dev.modelpress.evaluation;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import java.util.Arrays;
import java.util.List;

/**
 * The name, element type and shape of one dataset array: all that {@link InputCompatibility} needs,
 * so datasets can be checked at submission time without holding their data.
 *
 * @param name the array's name (a model input's name, or {@code labels})
 * @param dtype its element type
 * @param shape its dimensions; the first is the sample count
 */
public record DatasetArrayInfo(String name, DType dtype, List<Long> shape) {

  public DatasetArrayInfo {
    shape = List.copyOf(shape);
  }

  /** The name, type and shape of an array in memory. */
  public static DatasetArrayInfo of(NdArray array) {
    return new DatasetArrayInfo(
        array.name(), array.dtype(), Arrays.stream(array.shape()).boxed().toList());
  }

  /**
   * An array described by its {@code .npy} descriptor ({@code <f4}, {@code <i8}, {@code |b1}, …).
   *
   * @throws IllegalArgumentException for a descriptor modelpress does not accept
   */
  public static DatasetArrayInfo of(String name, String descriptor, List<Long> shape) {
    for (DType t : DType.values()) {
      if (t.descriptor().equals(descriptor)) {
        return new DatasetArrayInfo(name, t, shape);
      }
    }
    throw new IllegalArgumentException(
        "dataset array '" + name + "' has unsupported dtype '" + descriptor + "'");
  }
}
