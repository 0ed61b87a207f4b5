package dev.modelpress.training;

import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Runs a model in ONNX Runtime and its translation in SameDiff on the same inputs and measures how
 * far apart every graph output is.
 */
final class OrtAgreement {

  /**
   * Largest disagreement over all outputs and elements: the absolute difference for values up to 1
   * in magnitude, the relative difference above (float32 arithmetic in a different order).
   */
  record Result(double maxError, double maxAbsDifference, long elements) {}

  private OrtAgreement() {}

  static Result compare(ModelProto model, TrainableGraph graph, Map<String, INDArray> feeds, Path dir) {
    Path file = OnnxGraphBuilder.write(model, dir);
    Map<String, OrtRunner.Input> ortFeeds = new LinkedHashMap<>();
    feeds.forEach((name, array) -> ortFeeds.put(name, input(array)));
    String[] names = graph.outputs().stream().map(o -> graph.value(o).name()).toArray(String[]::new);
    Map<String, INDArray> sameDiff = graph.sameDiff().output(feeds, names);
    double maxError = 0;
    double maxAbs = 0;
    long elements = 0;
    try (OrtRunner ort = OrtRunner.unfused(file)) {
      for (String output : graph.outputs()) {
        float[] expected = ort.run(output, ortFeeds);
        INDArray actualArray = sameDiff.get(graph.value(output).name());
        float[] actual = TensorArrays.floats(actualArray);
        if (actual.length != expected.length) {
          throw new AssertionError("output '" + output + "': SameDiff computed " + actual.length
              + " values " + Arrays.toString(actualArray.shape()) + ", ONNX Runtime " + expected.length);
        }
        for (int i = 0; i < actual.length; i++) {
          double diff = Math.abs(actual[i] - expected[i]);
          if (Double.isNaN(diff)) {
            throw new AssertionError("output '" + output + "' element " + i + ": SameDiff " + actual[i]
                + ", ONNX Runtime " + expected[i]);
          }
          maxAbs = Math.max(maxAbs, diff);
          maxError = Math.max(maxError, diff / Math.max(1, Math.abs(expected[i])));
        }
        elements += actual.length;
      }
    }
    return new Result(maxError, maxAbs, elements);
  }

  static OrtRunner.Input input(INDArray array) {
    long[] shape = array.shape();
    if (array.dataType() == DataType.LONG) {
      return new OrtRunner.Input(array.dup('c').reshape(array.length()).toLongVector(), shape);
    }
    return new OrtRunner.Input(TensorArrays.floats(array), shape);
  }
}
