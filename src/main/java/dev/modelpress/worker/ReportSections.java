package dev.modelpress.worker;

import dev.modelpress.compression.PipelineResult;
import dev.modelpress.compression.StepReport;
import dev.modelpress.compression.TensorReport;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Sections of {@code report.json} derived from the pipeline's step reports. */
final class ReportSections {

  private ReportSections() {}

  /**
   * Sizes of the whole model before and after. Bits per weight divide the file's bits by the
   * original's parameter count, so they stay comparable when a step removes parameters.
   */
  static Map<String, Object> size(long bytesBefore, long bytesAfter, long parametersBefore, long parametersAfter,
      List<Layer> layers) {
    Map<String, Object> size = new LinkedHashMap<>();
    size.put("bytesBefore", bytesBefore);
    size.put("bytesAfter", bytesAfter);
    size.put("compressionRatio", bytesAfter == 0 ? null : (double) bytesBefore / bytesAfter);
    size.put("parametersBefore", parametersBefore);
    size.put("parametersAfter", parametersAfter);
    size.put("bitsPerWeightBefore", parametersBefore == 0 ? null : 8.0 * bytesBefore / parametersBefore);
    size.put("bitsPerWeightAfter", parametersBefore == 0 ? null : 8.0 * bytesAfter / parametersBefore);
    long params = 0;
    long before = 0;
    long after = 0;
    for (Layer l : layers) {
      params += l.parameters();
      before += l.bytesBefore();
      after += l.bytesAfter();
    }
    size.put("compressedTensors", layers.size());
    size.put("compressedTensorBytesBefore", before);
    size.put("compressedTensorBytesAfter", after);
    size.put("compressedTensorBitsPerWeight", params == 0 ? null : 8.0 * after / params);
    return size;
  }

  /**
   * One tensor across all steps that touched it: bytes and sparsity before the first and after
   * the last, and the SQNR of the last step that measured one (relative to that step's input).
   */
  record Layer(String name, List<Long> shape, long parameters, long bytesBefore, long bytesAfter,
      double sparsityBefore, double sparsityAfter, Double sqnrDb, Double mse, List<Integer> steps) {}

  /** A JSON object with its keys in the order given (Map.of's order changes from one JVM to the next). */
  static Map<String, Object> ordered(Object... keysAndValues) {
    Map<String, Object> map = new LinkedHashMap<>();
    for (int i = 0; i < keysAndValues.length; i += 2) {
      map.put((String) keysAndValues[i], keysAndValues[i + 1]);
    }
    return map;
  }

  /** Every tensor any step changed, in the order the steps first touched them. */
  static List<Layer> layers(PipelineResult result) {
    Map<String, Layer> layers = new LinkedHashMap<>();
    for (StepReport step : result.steps()) {
      for (TensorReport t : step.tensors()) {
        Layer first = layers.get(t.name());
        List<Integer> steps = new ArrayList<>(first == null ? List.of() : first.steps());
        steps.add(step.index());
        boolean measured = t.sqnrDb() != null || t.mse() != null;
        layers.put(t.name(), new Layer(t.name(), t.shape(), t.parameters(),
            first == null ? t.bytesBefore() : first.bytesBefore(), t.bytesAfter(),
            first == null ? t.sparsityBefore() : first.sparsityBefore(), t.sparsityAfter(),
            measured || first == null ? t.sqnrDb() : first.sqnrDb(),
            measured || first == null ? t.mse() : first.mse(),
            List.copyOf(steps)));
      }
    }
    return List.copyOf(layers.values());
  }
}
