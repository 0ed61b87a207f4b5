package dev.modelpress.training;

import dev.modelpress.evaluation.ActivationCollector;
import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A teacher's outputs (or intermediate tensors) for every training sample, computed once in ONNX
 * Runtime before training, so distillation costs one teacher pass per sample rather than one per
 * epoch.
 */
public final class TeacherOutputs {

  private TeacherOutputs() {}

  /**
   * Runs the teacher on {@code inputs} in batches of {@code batch} and stacks the requested tensors
   * over all samples.
   *
   * @param inputs arrays named like the teacher's inputs, samples along the first dimension
   * @param outputNames graph outputs or node outputs of the teacher's main graph
   * @return one array per name, {@code [samples, ...]}
   * @throws EvaluationException if the model cannot be read or run, a name is not a tensor of it,
   *     or the inputs do not fit it
   */
  public static Map<String, SampleArray> compute(Path onnxModel, List<NdArray> inputs, List<String> outputNames,
      int batch) throws EvaluationException {
    ModelProto model;
    try {
      model = OnnxModels.read(onnxModel);
    } catch (FormatException e) {
      throw new EvaluationException("the teacher model cannot be read: " + e.getMessage(), e);
    }
    Path dir = null;
    try {
      dir = Files.createTempDirectory("teacher-");
      try (ActivationCollector collector = ActivationCollector.open(model, outputNames, dir, 2)) {
        for (String name : outputNames) {
          if (!collector.floatTensors().contains(name)) {
            throw new EvaluationException("teacher tensor '" + name + "' is " + collector.elementTypes().get(name)
                + ", not floating point");
          }
        }
        int samples = Math.toIntExact(inputs.getFirst().shape()[0]);
        Map<String, float[]> values = new LinkedHashMap<>();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        int[] done = {0};
        collector.run(inputs, batch, samples, (b, n, activations) -> {
          for (String name : outputNames) {
            ActivationCollector.Activation a = activations.get(name);
            if (a.shape().length == 0 || a.shape()[0] != n) {
              throw new EvaluationException("teacher tensor '" + name + "' has no leading sample dimension of " + n);
            }
            int per = a.values().length / n;
            float[] all = values.computeIfAbsent(name, k -> new float[Math.multiplyExact(samples, per)]);
            shapes.computeIfAbsent(name, k -> {
              long[] s = a.shape().clone();
              s[0] = samples;
              return s;
            });
            System.arraycopy(a.values(), 0, all, done[0] * per, a.values().length);
          }
          done[0] += n;
        });
        Map<String, SampleArray> out = new LinkedHashMap<>();
        for (String name : outputNames) {
          out.put(name, new SampleArray(values.get(name), shapes.get(name)));
        }
        return out;
      }
    } catch (IOException e) {
      throw new EvaluationException("no scratch directory for the teacher run: " + e.getMessage(), e);
    } finally {
      if (dir != null) {
        try {
          Files.deleteIfExists(dir);
        } catch (IOException ignored) {
          // An empty temporary directory; the collector already deleted its model copy.
        }
      }
    }
  }
}
