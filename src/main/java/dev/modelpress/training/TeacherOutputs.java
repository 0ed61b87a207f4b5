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
import java.util.ArrayList;
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
        // Batches are kept as ONNX Runtime returns them and stacked at the end, so the sample count
        // is whatever the collector ran (the model's first input decides it), not guessed here.
        Map<String, List<float[]>> batches = new LinkedHashMap<>();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        int samples = collector.run(inputs, batch, Integer.MAX_VALUE, (b, n, activations) -> {
          for (String name : outputNames) {
            ActivationCollector.Activation a = activations.get(name);
            if (a.shape().length == 0 || a.shape()[0] != n) {
              throw new EvaluationException("teacher tensor '" + name + "' has no leading sample dimension of " + n);
            }
            batches.computeIfAbsent(name, k -> new ArrayList<>()).add(a.values());
            shapes.putIfAbsent(name, a.shape().clone());
          }
        });
        Map<String, SampleArray> out = new LinkedHashMap<>();
        for (String name : outputNames) {
          List<float[]> parts = batches.get(name);
          int total = parts.stream().mapToInt(p -> p.length).sum();
          float[] all = new float[total];
          int at = 0;
          for (float[] p : parts) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
          }
          long[] shape = shapes.get(name);
          shape[0] = samples;
          out.put(name, new SampleArray(all, shape));
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
