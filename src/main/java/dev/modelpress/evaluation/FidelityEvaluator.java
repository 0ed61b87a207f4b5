package dev.modelpress.evaluation;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.modelpress.format.ValueInfo;
import dev.modelpress.format.npy.NdArray;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs an original and a candidate (compressed) ONNX model on the same dataset in ONNX Runtime and
 * reports how faithfully the candidate reproduces the original's outputs and how fast each runs.
 *
 * <p>Both models run with the same fixed thread settings (intra-op threads as configured, one
 * inter-op thread, sequential execution) so their latencies are comparable and an evaluation does
 * not take over a machine shared with other workers. The evaluator owns its session options;
 * sessions live for one {@link #compare} call. Use one evaluator per thread.
 */
public final class FidelityEvaluator implements AutoCloseable {

  private static final String ORT_TYPE_PREFIX = "ONNX_TENSOR_ELEMENT_DATA_TYPE_";

  // The environment is a process-wide singleton shared with every other ONNX Runtime user in the
  // JVM; closing it here would break them, so the evaluator only uses it.
  private final OrtEnvironment env = OrtEnvironment.getEnvironment();
  private final OrtSession.SessionOptions sessionOptions;
  private final int intraOpThreads;
  private boolean closed;

  /** An evaluator that runs models on one intra-op thread. */
  public FidelityEvaluator() throws EvaluationException {
    this(1);
  }

  /**
   * An evaluator that runs models on {@code intraOpThreads} intra-op threads.
   *
   * @throws EvaluationException if ONNX Runtime rejects the thread settings
   */
  public FidelityEvaluator(int intraOpThreads) throws EvaluationException {
    if (intraOpThreads < 1) {
      throw new IllegalArgumentException("intraOpThreads must be at least 1, was " + intraOpThreads);
    }
    this.intraOpThreads = intraOpThreads;
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    try {
      options.setIntraOpNumThreads(intraOpThreads);
      options.setInterOpNumThreads(1);
      options.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
    } catch (OrtException e) {
      options.close();
      throw new EvaluationException("ONNX Runtime rejected the session settings: " + e.getMessage(), e);
    }
    this.sessionOptions = options;
  }

  /**
   * Runs both models on the dataset and compares them.
   *
   * @param original the reference model (an ONNX file; external data next to it)
   * @param candidate the model to judge, with the same inputs and outputs
   * @param dataset arrays named after the model inputs, samples along the first dimension, and an
   *     optional 1-D integer {@value InputCompatibility#LABELS} array
   * @param options batch size, sample limit and latency runs
   * @throws EvaluationException if the dataset does not fit either model, a model cannot be loaded
   *     or run, or the models' outputs differ in name or shape
   */
  public FidelityReport compare(Path original, Path candidate, List<NdArray> dataset, EvaluationOptions options)
      throws EvaluationException {
    if (closed) {
      throw new IllegalStateException("evaluator is closed");
    }
    Map<String, NdArray> arrays = byName(dataset);
    try (OrtSession originalSession = open(original, "original");
        OrtSession candidateSession = open(candidate, "candidate")) {
      Map<String, FeedType> originalInputs = checkInputs(originalSession, "original", dataset);
      Map<String, FeedType> candidateInputs = checkInputs(candidateSession, "candidate", dataset);
      Map<String, String> outputTypes = checkOutputs(originalSession, candidateSession);

      int batchSize = options.batchSize();
      long available = sampleCount(arrays, originalInputs.keySet());
      long samples = Math.min(available, options.maxSamples());
      if (samples == 0) {
        throw new EvaluationException("the dataset has no samples for the models' inputs");
      }
      if (hasFixedBatch(originalSession, batchSize) || hasFixedBatch(candidateSession, batchSize)) {
        // A fixed batch dimension cannot take a short last batch: evaluate whole batches only.
        samples -= samples % batchSize;
        if (samples == 0) {
          throw new EvaluationException(
              "dataset has " + available + " samples, fewer than the models' fixed batch size " + batchSize);
        }
      }
      long[] labels = labels(arrays, originalInputs.keySet(), samples);

      Map<String, OutputComparison> comparisons = new LinkedHashMap<>();
      outputTypes.forEach((name, type) -> comparisons.put(name, new OutputComparison(name, type)));
      for (long from = 0; from < samples; from += batchSize) {
        long to = Math.min(samples, from + batchSize);
        long[] batchLabels = labels == null ? null : Arrays.copyOfRange(labels, (int) from, (int) to);
        try (BatchFeed originalFeed = BatchFeed.of(env, originalInputs, arrays, from, to);
            BatchFeed candidateFeed = BatchFeed.of(env, candidateInputs, arrays, from, to);
            OrtSession.Result originalResult = run(originalSession, originalFeed, original, "original");
            OrtSession.Result candidateResult = run(candidateSession, candidateFeed, candidate, "candidate")) {
          for (OutputComparison comparison : comparisons.values()) {
            addBatch(comparison, originalResult, candidateResult, (int) (to - from), batchLabels);
          }
        }
      }

      Latency originalLatency = null;
      Latency candidateLatency = null;
      LatencyComparison pairedLatency = null;
      if (options.latencyRuns() > 0) {
        long to = Math.min(samples, batchSize);
        try (BatchFeed originalFeed = BatchFeed.of(env, originalInputs, arrays, 0, to);
            BatchFeed candidateFeed = BatchFeed.of(env, candidateInputs, arrays, 0, to)) {
          long[][] nanos = measureLatency(originalSession, originalFeed, candidateSession, candidateFeed, options);
          originalLatency = latency(nanos[0], (int) to);
          candidateLatency = latency(nanos[1], (int) to);
          pairedLatency = LatencyComparison.of(nanos[0], nanos[1]);
        }
      }
      Double speedup = originalLatency == null ? null : originalLatency.p50Millis() / candidateLatency.p50Millis();
      boolean slower = pairedLatency != null && pairedLatency.verdict() == LatencyComparison.Verdict.SLOWER;
      return new FidelityReport(
          (int) samples,
          batchSize,
          intraOpThreads,
          comparisons.values().stream().map(OutputComparison::result).toList(),
          originalLatency,
          candidateLatency,
          speedup,
          slower,
          pairedLatency);
    } catch (OrtException e) {
      String message = hidePath(hidePath(e.getMessage(), original, "original"), candidate, "candidate");
      throw new EvaluationException("ONNX Runtime failed to run the models: " + message, e);
    }
  }

  /** One run of one model, failing with a message that says which model failed. */
  private static OrtSession.Result run(OrtSession session, BatchFeed feed, Path model, String role)
      throws EvaluationException {
    try {
      return session.run(feed.tensors());
    } catch (OrtException e) {
      throw new EvaluationException(
          "the " + role + " model failed in ONNX Runtime: " + hidePath(e.getMessage(), model, role), e);
    }
  }

  private static Map<String, NdArray> byName(List<NdArray> dataset) throws EvaluationException {
    Map<String, NdArray> arrays = new LinkedHashMap<>();
    for (NdArray a : dataset) {
      if (arrays.put(a.name(), a) != null) {
        throw new EvaluationException("dataset has more than one array named '" + a.name() + "'");
      }
      long bytes = a.elementCount() * a.dtype().size();
      if (a.data().remaining() < bytes) {
        throw new EvaluationException(
            "dataset array '" + a.name() + "' holds " + a.data().remaining() + " bytes but its shape "
                + Arrays.toString(a.shape()) + " needs " + bytes);
      }
    }
    return arrays;
  }

  private OrtSession open(Path model, String role) throws EvaluationException {
    if (!Files.isRegularFile(model)) {
      throw new EvaluationException("the " + role + " model file is missing");
    }
    try {
      return env.createSession(model.toString(), sessionOptions);
    } catch (OrtException e) {
      throw new EvaluationException(
          "the " + role + " model cannot be loaded by ONNX Runtime: " + hidePath(e.getMessage(), model, role), e);
    }
  }

  /** ONNX Runtime's messages quote file paths; a client must not see server paths. */
  private static String hidePath(String message, Path model, String role) {
    if (message == null) {
      return "no details";
    }
    String label = "<" + role + " model>";
    return message.replace(model.toAbsolutePath().toString(), label).replace(model.toString(), label);
  }

  /** Checks the dataset against a session's inputs; returns each input's feed type. */
  private static Map<String, FeedType> checkInputs(OrtSession session, String role, List<NdArray> dataset)
      throws OrtException, EvaluationException {
    List<ValueInfo> inputs = new ArrayList<>();
    for (NodeInfo node : session.getInputInfo().values()) {
      if (!(node.getInfo() instanceof TensorInfo info)) {
        throw new EvaluationException(
            "the " + role + " model's input '" + node.getName() + "' is not a tensor; only tensor inputs can be fed");
      }
      inputs.add(valueInfo(node.getName(), info));
    }
    List<String> problems =
        InputCompatibility.check(inputs, dataset.stream().map(DatasetArrayInfo::of).toList());
    if (!problems.isEmpty()) {
      throw new EvaluationException("the dataset does not fit the " + role + " model: " + String.join("; ", problems));
    }
    Map<String, FeedType> types = new LinkedHashMap<>();
    for (ValueInfo input : inputs) {
      types.put(input.name(), FeedType.byOnnxName(input.elementType()));
    }
    return types;
  }

  /** The inputs and outputs ONNX Runtime reports, in the shape of the model catalogue. */
  static ValueInfo valueInfo(String name, TensorInfo info) {
    long[] shape = info.getShape();
    String[] symbols = info.getDimensionNames();
    List<String> dims = new ArrayList<>();
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] >= 0) {
        dims.add(Long.toString(shape[i]));
      } else {
        dims.add(symbols != null && i < symbols.length && !symbols[i].isEmpty() ? symbols[i] : "?");
      }
    }
    return new ValueInfo(name, elementTypeName(info), dims);
  }

  private static String elementTypeName(TensorInfo info) {
    String name = info.onnxType.name();
    return name.startsWith(ORT_TYPE_PREFIX) ? name.substring(ORT_TYPE_PREFIX.length()) : name;
  }

  /** Requires the same output names with compatible declared shapes; returns name → element type. */
  private static Map<String, String> checkOutputs(OrtSession original, OrtSession candidate)
      throws OrtException, EvaluationException {
    Map<String, NodeInfo> a = original.getOutputInfo();
    Map<String, NodeInfo> b = candidate.getOutputInfo();
    if (!a.keySet().equals(b.keySet())) {
      throw new EvaluationException(
          "the models' outputs differ: the original has " + a.keySet() + ", the candidate has " + b.keySet());
    }
    Map<String, String> types = new LinkedHashMap<>();
    for (String name : a.keySet()) {
      if (!(a.get(name).getInfo() instanceof TensorInfo ta) || !(b.get(name).getInfo() instanceof TensorInfo tb)) {
        throw new EvaluationException("output '" + name + "' is not a tensor; only tensor outputs can be compared");
      }
      ValueInfo va = valueInfo(name, ta);
      ValueInfo vb = valueInfo(name, tb);
      if (!compatibleShapes(va.shape(), vb.shape())) {
        throw new EvaluationException(
            "output '" + name + "' has shape " + va.shape() + " in the original but " + vb.shape() + " in the candidate");
      }
      types.put(name, va.elementType());
    }
    return types;
  }

  private static boolean compatibleShapes(List<String> a, List<String> b) {
    if (a.size() != b.size()) {
      return false;
    }
    for (int i = 0; i < a.size(); i++) {
      Long x = InputCompatibility.fixedSize(a.get(i));
      Long y = InputCompatibility.fixedSize(b.get(i));
      if (x != null && y != null && !x.equals(y)) {
        return false;
      }
    }
    return true;
  }

  private static boolean hasFixedBatch(OrtSession session, int batchSize) throws OrtException, EvaluationException {
    boolean fixed = false;
    for (NodeInfo node : session.getInputInfo().values()) {
      long[] shape = ((TensorInfo) node.getInfo()).getShape();
      if (shape.length > 0 && shape[0] >= 0) {
        if (shape[0] != batchSize) {
          throw new EvaluationException(
              "model input '" + node.getName() + "' has a fixed batch dimension of " + shape[0]
                  + "; evaluate with batch size " + shape[0]);
        }
        fixed = true;
      }
    }
    return fixed;
  }

  private static long sampleCount(Map<String, NdArray> arrays, Iterable<String> inputs) {
    for (String input : inputs) {
      return arrays.get(input).shape()[0];
    }
    return 0;
  }

  /** The first {@code samples} labels, or {@code null} when the dataset has none. */
  private static long[] labels(Map<String, NdArray> arrays, java.util.Set<String> inputs, long samples) {
    NdArray labels = arrays.get(InputCompatibility.LABELS);
    if (labels == null || inputs.contains(InputCompatibility.LABELS)) {
      return null;
    }
    ByteBuffer data = labels.data();
    long[] out = new long[(int) samples];
    for (int i = 0; i < out.length; i++) {
      out[i] = FeedType.readLong(data, labels.dtype(), i);
    }
    return out;
  }

  private static void addBatch(
      OutputComparison comparison, OrtSession.Result original, OrtSession.Result candidate, int batch, long[] labels)
      throws EvaluationException {
    String name = comparison.name();
    OnnxTensor a = tensor(original, name);
    OnnxTensor b = tensor(candidate, name);
    long[] shapeA = a.getInfo().getShape();
    long[] shapeB = b.getInfo().getShape();
    if (!Arrays.equals(shapeA, shapeB)) {
      throw new EvaluationException(
          "output '" + name + "' has shape " + Arrays.toString(shapeA) + " from the original but "
              + Arrays.toString(shapeB) + " from the candidate on the same batch");
    }
    comparison.add(values(name, a), values(name, b), shapeA, batch, labels);
  }

  private static OnnxTensor tensor(OrtSession.Result result, String name) throws EvaluationException {
    OnnxValue value = result.get(name).orElseThrow(() -> new IllegalStateException("no output " + name));
    if (!(value instanceof OnnxTensor tensor)) {
      throw new EvaluationException("output '" + name + "' is not a tensor; only tensor outputs can be compared");
    }
    return tensor;
  }

  /** A tensor's elements as doubles, whatever its numeric element type. */
  static double[] values(String name, OnnxTensor tensor) throws EvaluationException {
    TensorInfo info = tensor.getInfo();
    int n = Math.toIntExact(info.getNumElements());
    double[] out = new double[n];
    ByteBuffer b = tensor.getByteBuffer().order(ByteOrder.nativeOrder());
    switch (info.onnxType) {
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT -> {
        for (int i = 0; i < n; i++) {
          out[i] = b.getFloat(i * 4);
        }
      }
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE -> {
        for (int i = 0; i < n; i++) {
          out[i] = b.getDouble(i * 8);
        }
      }
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 -> {
        for (int i = 0; i < n; i++) {
          out[i] = Float.float16ToFloat(b.getShort(i * 2));
        }
      }
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 -> {
        for (int i = 0; i < n; i++) {
          out[i] = Float.intBitsToFloat((b.getShort(i * 2) & 0xFFFF) << 16);
        }
      }
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 -> {
        for (int i = 0; i < n; i++) {
          out[i] = b.get(i);
        }
      }
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL -> {
        for (int i = 0; i < n; i++) {
          out[i] = b.get(i) & 0xFF;
        }
      }
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16 -> {
        for (int i = 0; i < n; i++) {
          out[i] = b.getShort(i * 2);
        }
      }
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 -> {
        for (int i = 0; i < n; i++) {
          out[i] = b.getInt(i * 4);
        }
      }
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 -> {
        for (int i = 0; i < n; i++) {
          out[i] = b.getLong(i * 8);
        }
      }
      default -> throw new EvaluationException(
          "output '" + tensor.getInfo() + "' has element type " + elementTypeName(info) + ", which cannot be compared");
    }
    return out;
  }

  /**
   * Times both models on the same batch. Runs alternate between the models (and which goes first)
   * so that noise from other work on the machine falls on both alike rather than on whichever
   * model happened to be measured during it.
   */
  private static long[][] measureLatency(
      OrtSession original, BatchFeed originalFeed, OrtSession candidate, BatchFeed candidateFeed,
      EvaluationOptions options) throws OrtException {
    for (int i = 0; i < options.warmupRuns(); i++) {
      time(original, originalFeed);
      time(candidate, candidateFeed);
    }
    int runs = options.latencyRuns();
    long[] a = new long[runs];
    long[] b = new long[runs];
    for (int i = 0; i < runs; i++) {
      if (i % 2 == 0) {
        a[i] = time(original, originalFeed);
        b[i] = time(candidate, candidateFeed);
      } else {
        b[i] = time(candidate, candidateFeed);
        a[i] = time(original, originalFeed);
      }
    }
    return new long[][] {a, b};
  }

  private static long time(OrtSession session, BatchFeed feed) throws OrtException {
    long start = System.nanoTime();
    try (OrtSession.Result ignored = session.run(feed.tensors())) {
      return System.nanoTime() - start;
    }
  }

  static Latency latency(long[] nanos, int batch) {
    long[] sorted = nanos.clone();
    Arrays.sort(sorted);
    double mean = Arrays.stream(sorted).average().orElse(0);
    return new Latency(
        sorted.length, batch, millis(percentile(sorted, 50)), millis(percentile(sorted, 95)), mean / 1e6);
  }

  /** Nearest-rank percentile of sorted values. */
  private static long percentile(long[] sorted, int p) {
    int rank = (int) Math.ceil(p / 100.0 * sorted.length);
    return sorted[Math.max(0, rank - 1)];
  }

  private static double millis(long nanos) {
    return nanos / 1e6;
  }

  /** Releases the session options. Idempotent. */
  @Override
  public void close() {
    if (!closed) {
      closed = true;
      sessionOptions.close();
    }
  }
}
