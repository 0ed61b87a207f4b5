package dev.modelpress.training;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Runs a model in ONNX Runtime and its translation in SameDiff on the same inputs, checks that
 * every graph output has the same shape in both, and measures how far apart the values are.
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
    String[] names = graph.outputs().stream().map(o -> graph.value(o).name()).toArray(String[]::new);
    Map<String, INDArray> sameDiff = graph.sameDiff().output(feeds, names);
    double maxError = 0;
    double maxAbs = 0;
    long elements = 0;
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    List<OnnxTensor> created = new ArrayList<>();
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      // Basic optimizations only: the operators run as written, as OrtRunner.unfused does.
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.BASIC_OPT);
      try (OrtSession session = env.createSession(file.toString(), options)) {
        Map<String, OnnxTensor> ortFeeds = new LinkedHashMap<>();
        for (var e : feeds.entrySet()) {
          OrtRunner.Input in = input(e.getValue());
          OnnxTensor t = in.data() instanceof long[] l
              ? OnnxTensor.createTensor(env, LongBuffer.wrap(l), in.shape())
              : OnnxTensor.createTensor(env, FloatBuffer.wrap((float[]) in.data()), in.shape());
          created.add(t);
          ortFeeds.put(e.getKey(), t);
        }
        try (OrtSession.Result result = session.run(ortFeeds)) {
          for (String output : graph.outputs()) {
            OnnxTensor tensor = (OnnxTensor) result.get(output).orElseThrow();
            long[] expectedShape = tensor.getInfo().getShape();
            FloatBuffer buffer = tensor.getFloatBuffer();
            float[] expected = new float[buffer.remaining()];
            buffer.get(expected);
            INDArray actualArray = sameDiff.get(graph.value(output).name());
            if (!Arrays.equals(actualArray.shape(), expectedShape)) {
              throw new AssertionError("output '" + output + "': SameDiff computed shape "
                  + Arrays.toString(actualArray.shape()) + ", ONNX Runtime " + Arrays.toString(expectedShape));
            }
            float[] actual = TensorArrays.floats(actualArray);
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
      }
    } catch (OrtException e) {
      throw new IllegalStateException("ONNX Runtime failed: " + e.getMessage(), e);
    } finally {
      created.forEach(OnnxTensor::close);
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
