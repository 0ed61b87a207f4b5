package dev.modelpress.evaluation;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorShapeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TypeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Measures how much the model's outputs change when some weights take other values, without
 * rewriting the model for every trial: the weights under study become graph inputs of one ONNX
 * Runtime session, fed with their original values except the ones a trial replaces. Sensitivity
 * analysis (one tensor quantized at a time) and mixed-precision search run hundreds of trials on
 * one session this way.
 *
 * <p>Reference outputs of the original weights are computed once on the first {@code maxSamples}
 * calibration samples and kept (outputs of those samples only). The original weights are held
 * once, off-heap, as the session's feeds; a trial's replacements are copied into native tensors
 * for the trial and released after it.
 */
public final class WeightProbe implements AutoCloseable {

  /**
   * Agreement of a trial's outputs with the reference outputs over the probe's samples.
   *
   * @param meanCosine mean over samples of the cosine between flattened per-sample outputs
   *     (averaged over the model's floating-point outputs)
   * @param minCosine the worst sample's cosine
   * @param mse mean squared error over every output element
   * @param relativeMse mse divided by the mean square of the reference outputs
   */
  public record Fidelity(double meanCosine, double minCosine, double mse, double relativeMse) {}

  private final OrtEnvironment env = OrtEnvironment.getEnvironment();
  private final Path file;
  private final OrtSession.SessionOptions options;
  private final OrtSession session;
  private final Map<String, OnnxTensor> originals = new LinkedHashMap<>();
  private final Map<String, long[]> shapes = new LinkedHashMap<>();
  private final List<BatchFeed> feeds = new ArrayList<>();
  private final List<Integer> batchSamples = new ArrayList<>();
  private final List<String> outputs = new ArrayList<>();
  private final List<Map<String, float[]>> reference = new ArrayList<>();
  private final int samples;

  private WeightProbe(Path file, OrtSession.SessionOptions options, OrtSession session, int samples) {
    this.file = file;
    this.options = options;
    this.session = session;
    this.samples = samples;
  }

  /**
   * Opens a probe over {@code weights} (FLOAT initializers of the main graph) and computes the
   * reference outputs.
   *
   * @throws EvaluationException if a weight is not a FLOAT initializer, the data does not fit the
   *     model, or ONNX Runtime fails
   */
  public static WeightProbe open(ModelProto model, List<String> weights, List<NdArray> data, int batchSize,
      int maxSamples, Path workDir, int intraOpThreads) throws EvaluationException {
    GraphProto graph = model.getGraph();
    Set<String> chosen = new HashSet<>(weights);
    Set<String> declaredInputs = new HashSet<>();
    graph.getInputList().forEach(i -> declaredInputs.add(i.getName()));
    GraphProto.Builder g = graph.toBuilder().clearInitializer();
    Map<String, TensorProto> found = new LinkedHashMap<>();
    for (TensorProto t : graph.getInitializerList()) {
      if (!chosen.contains(t.getName())) {
        g.addInitializer(t);
        continue;
      }
      if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
        throw new EvaluationException("weight '" + t.getName() + "' is not FLOAT; only FLOAT weights can be probed");
      }
      found.put(t.getName(), t);
      if (!declaredInputs.contains(t.getName())) {
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
        t.getDimsList().forEach(d -> shape.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(d)));
        g.addInput(ValueInfoProto.newBuilder().setName(t.getName()).setType(TypeProto.newBuilder()
            .setTensorType(TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE).setShape(shape))));
      }
    }
    for (String w : weights) {
      if (!found.containsKey(w)) {
        throw new EvaluationException("weight '" + w + "' is not an initializer of the model's main graph");
      }
    }
    Path file = null;
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    WeightProbe probe = null;
    try {
      file = Files.createTempFile(workDir, "probe-", ".onnx");
      OnnxModels.write(model.toBuilder().setGraph(g).build(), file);
      options.setIntraOpNumThreads(intraOpThreads);
      options.setInterOpNumThreads(1);
      OrtSession session = OrtEnvironment.getEnvironment().createSession(file.toString(), options);
      Map<String, NdArray> arrays = new LinkedHashMap<>();
      data.forEach(a -> arrays.put(a.name(), a));
      Map<String, FeedType> feedTypes = ActivationCollector.feedTypes(session, arrays, found.keySet());
      long available = arrays.get(feedTypes.keySet().iterator().next()).shape()[0];
      int samples = (int) Math.min(available, maxSamples);
      if (samples <= 0) {
        throw new EvaluationException("the calibration dataset has no samples");
      }
      WeightProbe created = new WeightProbe(file, options, session, samples);
      probe = created;
      for (TensorProto t : found.values()) {
        float[] values = OnnxTensors.toFloats(t);
        long[] shape = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        probe.shapes.put(t.getName(), shape);
        probe.originals.put(t.getName(), OnnxTensor.createTensor(probe.env, direct(values), shape));
      }
      for (int from = 0; from < samples; from += batchSize) {
        int to = Math.min(samples, from + batchSize);
        probe.feeds.add(BatchFeed.of(probe.env, feedTypes, arrays, from, to));
        probe.batchSamples.add(to - from);
      }
      session.getOutputInfo().forEach((name, info) -> {
        if (info.getInfo() instanceof ai.onnxruntime.TensorInfo ti && isFloat(ti)) {
          created.outputs.add(name);
        }
      });
      if (probe.outputs.isEmpty()) {
        throw new EvaluationException("the model has no floating-point output to compare");
      }
      probe.reference.addAll(probe.runAll(Map.of()));
      return probe;
    } catch (IOException e) {
      cleanUp(probe, options, file);
      throw new EvaluationException("could not write the probe model: " + e.getMessage(), e);
    } catch (OrtException e) {
      cleanUp(probe, options, file);
      throw new EvaluationException("ONNX Runtime failed to probe the model: " + e.getMessage(), e);
    } catch (EvaluationException | RuntimeException e) {
      cleanUp(probe, options, file);
      throw e;
    }
  }

  /** Samples each trial runs. */
  public int samples() {
    return samples;
  }

  /** Runs the model with {@code replacements} (weight name → values) and the other weights as they are. */
  public Fidelity measure(Map<String, float[]> replacements) throws EvaluationException {
    for (var e : replacements.entrySet()) {
      long[] shape = shapes.get(e.getKey());
      if (shape == null) {
        throw new IllegalArgumentException("weight '" + e.getKey() + "' is not probed");
      }
    }
    List<Map<String, float[]>> trial;
    try {
      trial = runAll(replacements);
    } catch (OrtException e) {
      throw new EvaluationException("ONNX Runtime failed on a probe trial: " + e.getMessage(), e);
    }
    double cosineSum = 0;
    double cosineMin = Double.POSITIVE_INFINITY;
    double squaredError = 0;
    double squaredReference = 0;
    long elements = 0;
    for (int b = 0; b < trial.size(); b++) {
      int n = batchSamples.get(b);
      double[] perSample = new double[n];
      for (String output : outputs) {
        float[] ref = reference.get(b).get(output);
        float[] got = trial.get(b).get(output);
        int length = ref.length / n;
        for (int s = 0; s < n; s++) {
          double dot = 0;
          double nr = 0;
          double ng = 0;
          for (int i = s * length, end = i + length; i < end; i++) {
            double r = ref[i];
            double x = got[i];
            dot += r * x;
            nr += r * r;
            ng += x * x;
            squaredError += (r - x) * (r - x);
          }
          squaredReference += nr;
          perSample[s] += nr == 0 && ng == 0 ? 1 : (nr == 0 || ng == 0 ? 0 : dot / Math.sqrt(nr * ng));
        }
        elements += ref.length;
      }
      for (double c : perSample) {
        double mean = c / outputs.size();
        cosineSum += mean;
        cosineMin = Math.min(cosineMin, mean);
      }
    }
    double mse = squaredError / elements;
    double meanSquare = squaredReference / elements;
    return new Fidelity(cosineSum / samples, cosineMin, mse, meanSquare == 0 ? mse : mse / meanSquare);
  }

  private List<Map<String, float[]>> runAll(Map<String, float[]> replacements) throws OrtException, EvaluationException {
    Map<String, OnnxTensor> replaced = new LinkedHashMap<>();
    try {
      for (var e : replacements.entrySet()) {
        replaced.put(e.getKey(), OnnxTensor.createTensor(env, direct(e.getValue()), shapes.get(e.getKey())));
      }
      List<Map<String, float[]>> results = new ArrayList<>();
      Set<String> wanted = new java.util.LinkedHashSet<>(outputs);
      for (BatchFeed feed : feeds) {
        Map<String, OnnxTensor> inputs = new LinkedHashMap<>(feed.tensors());
        originals.forEach((name, t) -> inputs.put(name, replaced.getOrDefault(name, t)));
        try (OrtSession.Result result = session.run(inputs, wanted)) {
          Map<String, float[]> values = new LinkedHashMap<>();
          for (String output : outputs) {
            values.put(output, ActivationCollector.activation(result, output).values());
          }
          results.add(values);
        }
      }
      return results;
    } finally {
      replaced.values().forEach(OnnxTensor::close);
    }
  }

  private static boolean isFloat(ai.onnxruntime.TensorInfo info) {
    return info.onnxType == ai.onnxruntime.TensorInfo.OnnxTensorType.ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }

  private static FloatBuffer direct(float[] values) {
    FloatBuffer b = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
    b.put(values).flip();
    return b;
  }

  private static void cleanUp(WeightProbe probe, OrtSession.SessionOptions options, Path file) {
    if (probe != null) {
      probe.close();
      return;
    }
    options.close();
    if (file != null) {
      try {
        Files.deleteIfExists(file);
      } catch (IOException ignored) {
        // Left in the job's work directory, which is removed with the job.
      }
    }
  }

  /** Releases the session, the weight tensors and the batch feeds, and deletes the probe model. */
  @Override
  public void close() {
    feeds.forEach(BatchFeed::close);
    feeds.clear();
    originals.values().forEach(OnnxTensor::close);
    originals.clear();
    try {
      session.close();
    } catch (OrtException ignored) {
      // Closing only frees native memory.
    }
    options.close();
    try {
      Files.deleteIfExists(file);
    } catch (IOException ignored) {
      // Left in the job's work directory, which is removed with the job.
    }
  }
}
