package dev.modelpress.format.npy;

import java.util.List;

/**
 * What a calibration or evaluation data set holds, as validated at upload.
 *
 * @param arrays the arrays in file order
 * @param samples the number of samples: the first dimension every array shares
 * @param hasLabels whether an integer {@code labels} array gives each sample's class
 */
public record DatasetSummary(List<ArraySummary> arrays, long samples, boolean hasLabels) {

  public DatasetSummary {
    arrays = List.copyOf(arrays);
  }

  /**
   * One array of a data set.
   *
   * @param name its name (the npz entry without {@code .npy})
   * @param dtype its NumPy type name, e.g. {@code float32}
   * @param shape its dimensions, the first being the sample count
   */
  public record ArraySummary(String name, String dtype, List<Long> shape) {

    public ArraySummary {
      shape = List.copyOf(shape);
    }
  }
}
