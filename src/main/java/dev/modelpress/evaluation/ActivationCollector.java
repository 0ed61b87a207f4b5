package dev.modelpress.evaluation;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Runs a model in ONNX Runtime on calibration samples and hands the values of chosen intermediate
 * tensors to a consumer, one batch at a time, so memory holds one batch of activations whatever
 * the number of samples. The basis of every data-aware method: activation ranges for static
 * quantization, Hessians for GPTQ, input norms for Wanda/SparseGPT-style pruning.
 *
 * <p>ONNX Runtime only returns graph outputs, so {@link #open} writes a copy of the model whose
 * graph also outputs the requested tensors (a temporary file in the given directory, deleted on
 * {@link #close}); the copy's extra outputs carry no type, and ONNX Runtime infers it. Tensors of
 * non-floating-point type (token ids, masks, shapes) are reported by {@link #elementTypes()} and
 * never passed to the consumer.
 */
public final class ActivationCollector implements AutoCloseable {

  /** One tensor's values in one batch, as float32 in C order, with its shape. */
  public record Activation(float[] values, long[] shape) {

    /** Length of the last dimension: the feature width a row of this activation has. */
    public int rowWidth() {
      return shape.length == 0 ? 1 : Math.toIntExact(shape[shape.length - 1]);
    }
  }

  /** Receives the activations of one batch; may throw to stop the run. */
  @FunctionalInterface
  public interface BatchConsumer {
    void accept(int batch, int samples, Map<String, Activation> activations) throws EvaluationException;
  }

  private static final String ORT_TYPE_PREFIX = "ONNX_TENSOR_ELEMENT_DATA_TYPE_";

  private final OrtEnvironment env = OrtEnvironment.getEnvironment();
  private final Path file;
  private final OrtSession.SessionOptions options;
  private final OrtSession session;
  private final Map<String, String> types;
  private final Set<String> floats = new LinkedHashSet<>();

  private ActivationCollector(Path file, OrtSession.SessionOptions options, OrtSession session,
      Map<String, String> types) {
    this.file = file;
    this.options = options;
    this.session = session;
    this.types = types;
    types.forEach((name, type) -> {
      if (type.equals("FLOAT") || type.equals("FLOAT16") || type.equals("DOUBLE")) {
        floats.add(name);
      }
    });
  }

  /**
   * Prepares a session that exposes {@code tensors}. Names may be graph outputs, graph inputs or
   * node outputs of the main graph.
   *
   * @param workDir where the temporary model copy is written
   * @param intraOpThreads ONNX Runtime intra-op threads
   * @throws EvaluationException if a name is not a tensor of the graph or ONNX Runtime rejects the model
   */
  public static ActivationCollector open(ModelProto model, Collection<String> tensors, Path workDir, int intraOpThreads)
      throws EvaluationException {
    GraphProto graph = model.getGraph();
    Set<String> produced = new HashSet<>();
    graph.getNodeList().forEach(n -> produced.addAll(n.getOutputList()));
    Set<String> outputs = new HashSet<>();
    graph.getOutputList().forEach(o -> outputs.add(o.getName()));
    Set<String> inputs = new HashSet<>();
    graph.getInputList().forEach(i -> inputs.add(i.getName()));
    GraphProto.Builder g = graph.toBuilder();
    for (String t : new LinkedHashSet<>(tensors)) {
      if (outputs.contains(t) || inputs.contains(t)) {
        continue;
      }
      if (!produced.contains(t)) {
        throw new EvaluationException("tensor '" + t + "' is not computed by any node of the model's main graph");
      }
      g.addOutput(ValueInfoProto.newBuilder().setName(t));
    }
    Path file = null;
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    try {
      file = Files.createTempFile(workDir, "activations-", ".onnx");
      OnnxModels.write(model.toBuilder().setGraph(g).build(), file);
      options.setIntraOpNumThreads(intraOpThreads);
      options.setInterOpNumThreads(1);
      OrtSession session = OrtEnvironment.getEnvironment().createSession(file.toString(), options);
      Map<String, String> types = new LinkedHashMap<>();
      Map<String, NodeInfo> out = session.getOutputInfo();
      Map<String, NodeInfo> in = session.getInputInfo();
      for (String t : tensors) {
        NodeInfo info = out.containsKey(t) ? out.get(t) : in.get(t);
        types.put(t, info != null && info.getInfo() instanceof TensorInfo ti ? typeName(ti) : "UNKNOWN");
      }
      return new ActivationCollector(file, options, session, types);
    } catch (IOException e) {
      options.close();
      deleteQuietly(file);
      throw new EvaluationException("could not write the calibration model copy: " + e.getMessage(), e);
    } catch (OrtException e) {
      options.close();
      deleteQuietly(file);
      throw new EvaluationException("ONNX Runtime cannot load the model for calibration: " + e.getMessage(), e);
    }
  }

  /** The ONNX element type of each requested tensor (e.g. {@code FLOAT}, {@code INT64}), in request order. */
  public Map<String, String> elementTypes() {
    return java.util.Collections.unmodifiableMap(types);
  }

  /** The requested tensors that hold floating-point values: the ones the consumer receives. */
  public Set<String> floatTensors() {
    return java.util.Collections.unmodifiableSet(floats);
  }

  /**
   * Runs the first {@code maxSamples} samples of {@code data} in batches of {@code batchSize} and
   * passes each batch's floating-point activations to {@code consumer}.
   *
   * @param data arrays named after the model inputs, samples along the first dimension
   * @return the number of samples run
   * @throws EvaluationException if the data does not fit the model or ONNX Runtime fails
   */
  public int run(List<NdArray> data, int batchSize, int maxSamples, BatchConsumer consumer) throws EvaluationException {
    Map<String, NdArray> arrays = new LinkedHashMap<>();
    data.forEach(a -> arrays.put(a.name(), a));
    try {
      Map<String, FeedType> feedTypes = feedTypes(session, arrays, Set.of());
      long available = arrays.get(feedTypes.keySet().iterator().next()).shape()[0];
      int samples = (int) Math.min(available, maxSamples);
      if (samples <= 0) {
        throw new EvaluationException("the calibration dataset has no samples");
      }
      // ONNX Runtime cannot return a graph input as an output: those are read from the feed.
      Set<String> computed = new LinkedHashSet<>(floats);
      computed.removeAll(feedTypes.keySet());
      int batch = 0;
      for (int from = 0; from < samples; from += batchSize, batch++) {
        int to = Math.min(samples, from + batchSize);
        try (BatchFeed feed = BatchFeed.of(env, feedTypes, arrays, from, to);
            OrtSession.Result result = session.run(feed.tensors(), computed.isEmpty()
                ? Set.of(session.getOutputNames().iterator().next()) : computed)) {
          Map<String, Activation> values = new LinkedHashMap<>();
          for (String name : floats) {
            OnnxTensor fed = feed.tensors().get(name);
            values.put(name, fed != null ? activation(fed, name) : activation(result, name));
          }
          consumer.accept(batch, to - from, values);
        }
      }
      return samples;
    } catch (OrtException e) {
      throw new EvaluationException("ONNX Runtime failed on the calibration data: " + e.getMessage(), e);
    }
  }

  /**
   * Checks the dataset against the session's inputs, except {@code fedElsewhere}; returns each
   * checked input's feed type.
   */
  static Map<String, FeedType> feedTypes(OrtSession session, Map<String, NdArray> arrays, Set<String> fedElsewhere)
      throws OrtException, EvaluationException {
    List<dev.modelpress.format.ValueInfo> inputs = new ArrayList<>();
    for (NodeInfo node : session.getInputInfo().values()) {
      if (fedElsewhere.contains(node.getName())) {
        continue;
      }
      if (!(node.getInfo() instanceof TensorInfo info)) {
        throw new EvaluationException("model input '" + node.getName() + "' is not a tensor");
      }
      inputs.add(FidelityEvaluator.valueInfo(node.getName(), info));
    }
    List<String> problems = InputCompatibility.check(
        inputs, arrays.values().stream().map(DatasetArrayInfo::of).toList());
    if (!problems.isEmpty()) {
      throw new EvaluationException("the calibration dataset does not fit the model: " + String.join("; ", problems));
    }
    Map<String, FeedType> out = new LinkedHashMap<>();
    for (var input : inputs) {
      out.put(input.name(), FeedType.byOnnxName(input.elementType()));
    }
    return out;
  }

  static Activation activation(OrtSession.Result result, String name) throws EvaluationException {
    OnnxValue value = result.get(name).orElseThrow(() -> new IllegalStateException("no output " + name));
    if (!(value instanceof OnnxTensor tensor)) {
      throw new EvaluationException("tensor '" + name + "' is not a dense tensor");
    }
    return activation(tensor, name);
  }

  private static Activation activation(OnnxTensor tensor, String name) throws EvaluationException {
    if (tensor.getInfo().onnxType == ai.onnxruntime.TensorInfo.OnnxTensorType.ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
      java.nio.FloatBuffer buffer = tensor.getFloatBuffer();
      float[] f = new float[buffer.remaining()];
      buffer.get(f);
      return new Activation(f, tensor.getInfo().getShape());
    }
    double[] d = FidelityEvaluator.values(name, tensor);
    float[] f = new float[d.length];
    for (int i = 0; i < d.length; i++) {
      f[i] = (float) d[i];
    }
    return new Activation(f, tensor.getInfo().getShape());
  }

  private static String typeName(TensorInfo info) {
    String name = info.onnxType.name();
    return name.startsWith(ORT_TYPE_PREFIX) ? name.substring(ORT_TYPE_PREFIX.length()) : name;
  }

  private static void deleteQuietly(Path file) {
    if (file != null) {
      try {
        Files.deleteIfExists(file);
      } catch (IOException ignored) {
        // A temporary file in the job's work directory; the directory is removed with the job.
      }
    }
  }

  /** Closes the session and deletes the temporary model copy. Idempotent. */
  @Override
  public void close() {
    try {
      session.close();
    } catch (OrtException ignored) {
      // Closing only frees native memory.
    }
    options.close();
    deleteQuietly(file);
  }
}
