package dev.modelpress.evaluation;

import dev.modelpress.format.ValueInfo;
import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Whether a dataset can feed a model, decided from names, types and shapes alone, so a job can be
 * rejected at submission before anything runs. The evaluator applies the same check to the inputs
 * ONNX Runtime reports for each model.
 *
 * <p>Every model input needs a dataset array of the same name whose first dimension is the sample
 * count and whose remaining dimensions match the input's fixed dimensions (symbolic dimensions
 * take any size). The model input's first dimension is the batch and is not compared with the
 * sample count. An optional array named {@value #LABELS} (1-D integers, one per sample) holds class
 * labels, unless the model has an input of that name. Other arrays are ignored.
 */
public final class InputCompatibility {

  /** The name of the optional class-label array. */
  public static final String LABELS = "labels";

  private InputCompatibility() {}

  /**
   * Checks a dataset against a model's inputs.
   *
   * @param modelInputs the model's graph inputs (initializers excluded)
   * @param datasetArrays the dataset's arrays
   * @return client-safe messages, one per problem; empty when the dataset fits
   */
  public static List<String> check(List<ValueInfo> modelInputs, List<DatasetArrayInfo> datasetArrays) {
    List<String> problems = new ArrayList<>();
    Map<String, DatasetArrayInfo> arrays = new LinkedHashMap<>();
    for (DatasetArrayInfo a : datasetArrays) {
      if (arrays.putIfAbsent(a.name(), a) != null) {
        problems.add("dataset has more than one array named '" + a.name() + "'");
      }
    }
    // Which arrays carry samples, so their first dimensions must agree.
    Map<String, Long> sampleCounts = new LinkedHashMap<>();
    boolean labelsAreInput = false;
    for (ValueInfo input : modelInputs) {
      labelsAreInput |= input.name().equals(LABELS);
      DatasetArrayInfo array = arrays.get(input.name());
      if (array == null) {
        problems.add(
            "dataset has no array for model input '" + input.name() + "' (" + describe(input)
                + "); dataset arrays: " + String.join(", ", arrays.keySet()));
        continue;
      }
      checkInput(input, array, problems);
      if (!array.shape().isEmpty()) {
        sampleCounts.put(array.name(), array.shape().getFirst());
      }
    }
    DatasetArrayInfo labels = arrays.get(LABELS);
    if (labels != null && !labelsAreInput) {
      if (labels.shape().size() != 1 || !FeedType.isInteger(labels.dtype())) {
        problems.add(
            "dataset array 'labels' must be a 1-D integer array of class indices, but is "
                + dtypeName(labels.dtype()) + " " + labels.shape());
      } else {
        sampleCounts.put(LABELS, labels.shape().getFirst());
      }
    }
    if (sampleCounts.values().stream().distinct().count() > 1) {
      problems.add("dataset arrays disagree on the sample count (first dimension): " + sampleCounts);
    } else if (!sampleCounts.isEmpty() && sampleCounts.values().iterator().next() == 0) {
      problems.add("dataset has no samples: the first dimension of its arrays is 0");
    }
    return problems;
  }

  private static void checkInput(ValueInfo input, DatasetArrayInfo array, List<String> problems) {
    String name = input.name();
    FeedType type = FeedType.byOnnxName(input.elementType());
    if (type == null) {
      problems.add(
          "model input '" + name + "' has element type " + input.elementType()
              + ", which modelpress cannot feed from a dataset");
    } else if (!type.accepts(array.dtype())) {
      problems.add(
          "dataset array '" + name + "' is " + dtypeName(array.dtype()) + " but model input '" + name
              + "' takes " + input.elementType() + "; only conversions that keep every value are made");
    }
    List<Long> shape = array.shape();
    if (shape.isEmpty()) {
      problems.add(
          "dataset array '" + name + "' is a scalar; input arrays need the sample count as their first dimension");
      return;
    }
    if (shape.size() != input.shape().size()) {
      problems.add(
          "dataset array '" + name + "' has shape " + shape + " (rank " + shape.size() + ") but model input '"
              + name + "' has rank " + input.shape().size() + " " + input.shape());
      return;
    }
    for (int i = 1; i < shape.size(); i++) {
      Long fixed = fixedSize(input.shape().get(i));
      if (fixed != null && fixed != shape.get(i).longValue()) {
        problems.add(
            "dataset array '" + name + "' has size " + shape.get(i) + " at dimension " + i
                + " but model input '" + name + "' fixes it to " + fixed + " " + input.shape());
      }
    }
  }

  /** The size of a fixed dimension, or {@code null} for a symbolic or unknown one. */
  static Long fixedSize(String dimension) {
    if (dimension == null || dimension.isEmpty() || !dimension.chars().allMatch(Character::isDigit)) {
      return null;
    }
    return Long.parseLong(dimension);
  }

  private static String describe(ValueInfo input) {
    return input.elementType() + " " + input.shape();
  }

  private static String dtypeName(DType d) {
    return d.name().toLowerCase(java.util.Locale.ROOT) + " ('" + d.descriptor() + "')";
  }

  /** The class indices of a {@value #LABELS} array (any integer dtype), one per sample. */
  public static long[] labelValues(NdArray labels) {
    long[] out = new long[Math.toIntExact(labels.shape()[0])];
    for (int i = 0; i < out.length; i++) {
      out[i] = FeedType.readLong(labels.data(), labels.dtype(), i);
    }
    return out;
  }
}
