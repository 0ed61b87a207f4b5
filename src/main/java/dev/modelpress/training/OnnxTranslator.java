package dev.modelpress.training;

import dev.modelpress.compression.CompressionException;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.stream.Collectors;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Translates an ONNX graph of common trainable operators into a SameDiff graph whose variables are
 * the ONNX initializers ({@link TrainableGraph}), and writes trained values back into the original
 * ONNX model.
 *
 * <p>The translation computes what ONNX Runtime computes (inference semantics): {@code Dropout} is
 * the identity and {@code BatchNormalization} uses its running statistics, which stay constants
 * while its scale and bias train. Graph inputs become placeholders whose symbolic dims (batch,
 * sequence length) stay free ({@code -1}), so one translation serves any batch size. Nodes may come
 * in any order. {@link #supportedOperators()} lists the operators; a model using others is refused
 * with a {@link CompressionException} naming every unsupported operator and the nodes using it,
 * which {@link #unsupported(ModelProto)} reports without translating.
 *
 * <pre>{@code
 * TrainableGraph g = OnnxTranslator.translate(model);
 * // ... train g.sameDiff() ...
 * ModelProto trained = OnnxTranslator.writeBack(model, g.weights());
 * }</pre>
 */
public final class OnnxTranslator {

  /** The ai.onnx operators the translator handles. */
  private static final Set<String> SUPPORTED = Set.of(
      "Add", "Sub", "Mul", "Div", "Pow", "Gemm", "MatMul", "Conv", "BatchNormalization",
      "LayerNormalization", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Gelu", "Erf", "Sqrt", "Exp", "Log",
      "Neg", "Abs", "Reciprocal", "Clip", "Softmax", "LogSoftmax", "MaxPool", "AveragePool",
      "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape", "Transpose", "Concat", "Unsqueeze",
      "Squeeze", "Dropout", "Identity", "Constant", "Shape", "Gather", "Cast", "Slice", "ReduceMean",
      "ReduceSum");

  /**
   * Input slots that hold parameters when an initializer feeds them: weights, biases, embedding
   * tables and normalisation scales/shifts. {@code BatchNormalization}'s running mean and variance
   * (slots 3 and 4) are statistics, not parameters.
   */
  private static final Map<String, Set<Integer>> PARAMETER_SLOTS = Map.ofEntries(
      Map.entry("Gemm", Set.of(0, 1, 2)),
      Map.entry("MatMul", Set.of(0, 1)),
      Map.entry("Conv", Set.of(1, 2)),
      Map.entry("BatchNormalization", Set.of(1, 2)),
      Map.entry("LayerNormalization", Set.of(1, 2)),
      Map.entry("Add", Set.of(0, 1)),
      Map.entry("Sub", Set.of(0, 1)),
      Map.entry("Mul", Set.of(0, 1)),
      Map.entry("Div", Set.of(0, 1)),
      Map.entry("Gather", Set.of(0)));

  /** Rows above which a {@code Gather} table (a vocabulary) stays frozen by default. */
  public static final int MAX_TRAINED_LOOKUP_ROWS = 4096;

  /**
   * An operator the translator does not handle and the nodes using it.
   *
   * @param opType the operator, prefixed by its domain when that is not ai.onnx ({@code
   *     com.microsoft.FusedMatMul})
   * @param nodes the nodes using it, by name (or by first output for unnamed nodes), in graph order
   */
  public record UnsupportedOperator(String opType, List<String> nodes) {

    public UnsupportedOperator {
      nodes = List.copyOf(nodes);
    }

    /** {@code LSTM (nodes lstm_1, lstm_2)} or {@code Resize (node up)}. */
    @Override
    public String toString() {
      return opType + " (node" + (nodes.size() == 1 ? " " : "s ") + String.join(", ", nodes) + ")";
    }
  }

  private OnnxTranslator() {}

  /** The ai.onnx operator types the translator handles, sorted. */
  public static List<String> supportedOperators() {
    return SUPPORTED.stream().sorted().toList();
  }

  /**
   * The operators of the model the translator does not handle, each with the nodes using it, in
   * order of first use; empty when the model can be translated as far as its operators go (an
   * operator may still be refused during translation for an attribute it does not support, e.g. a
   * 3-D {@code Conv}).
   */
  public static List<UnsupportedOperator> unsupported(ModelProto model) {
    Map<String, List<String>> byOp = new LinkedHashMap<>();
    for (NodeProto n : model.getGraph().getNodeList()) {
      boolean defaultDomain = n.getDomain().isEmpty() || n.getDomain().equals("ai.onnx");
      if (!defaultDomain || !SUPPORTED.contains(n.getOpType())) {
        String op = defaultDomain ? n.getOpType() : n.getDomain() + "." + n.getOpType();
        byOp.computeIfAbsent(op, k -> new ArrayList<>()).add(GraphTranslation.describe(n));
      }
    }
    List<UnsupportedOperator> out = new ArrayList<>();
    byOp.forEach((op, nodes) -> out.add(new UnsupportedOperator(op, nodes)));
    return out;
  }

  /**
   * The message a client sees for unsupported operators: {@code unsupported operators: LSTM (nodes
   * lstm_1, lstm_2), Resize (node up)}.
   */
  public static String describe(List<UnsupportedOperator> unsupported) {
    return "unsupported operators: " + unsupported.stream().map(UnsupportedOperator::toString)
        .collect(Collectors.joining(", "));
  }

  /**
   * The initializers trained by default: FLOAT initializers of rank 1 or more that some node reads
   * as a weight, bias, embedding table or normalisation scale/shift (a {@code Gemm}, {@code MatMul},
   * {@code Conv}, {@code BatchNormalization} or {@code LayerNormalization} parameter, an operand of
   * {@code Add}/{@code Sub}/{@code Mul}/{@code Div}, the data of {@code Gather}), and none reads as
   * {@code BatchNormalization} running statistics. Others (shapes, scalars, running statistics,
   * integer tensors) stay constants, and so do lookup tables of more than {@value
   * #MAX_TRAINED_LOOKUP_ROWS} rows (a vocabulary): a trained lookup costs a [lookups, rows] one-hot
   * product per step (see the class notes), which a caller may still choose by naming the table.
   */
  public static Set<String> defaultTrainable(ModelProto model) {
    Map<String, TensorProto> floats = new HashMap<>();
    for (TensorProto t : model.getGraph().getInitializerList()) {
      if (t.getDataType() == TensorProto.DataType.FLOAT_VALUE && t.getDimsCount() >= 1) {
        floats.put(t.getName(), t);
      }
    }
    Set<String> parameters = new HashSet<>();
    Set<String> frozen = new HashSet<>();
    for (NodeProto n : model.getGraph().getNodeList()) {
      Set<Integer> slots = PARAMETER_SLOTS.getOrDefault(n.getOpType(), Set.of());
      for (int i = 0; i < n.getInputCount(); i++) {
        String name = n.getInput(i);
        if (!floats.containsKey(name)) {
          continue;
        }
        if (n.getOpType().equals("Gather") && i == 0 && floats.get(name).getDims(0) > MAX_TRAINED_LOOKUP_ROWS) {
          frozen.add(name);
        } else if (slots.contains(i)) {
          parameters.add(name);
        } else if (n.getOpType().equals("BatchNormalization")) {
          frozen.add(name);
        }
      }
    }
    Set<String> out = new LinkedHashSet<>();
    for (TensorProto t : model.getGraph().getInitializerList()) {
      if (parameters.contains(t.getName()) && !frozen.contains(t.getName())) {
        out.add(t.getName());
      }
    }
    return out;
  }

  /** Translates the model, training the {@linkplain #defaultTrainable default} initializers. */
  public static TrainableGraph translate(ModelProto model) {
    return translate(model, defaultTrainable(model));
  }

  /**
   * Translates the model; the named initializers become trainable SameDiff variables, every other
   * initializer a constant.
   *
   * @param trainable names of FLOAT initializers of the model
   * @throws CompressionException when the model uses an unsupported operator (the message lists
   *     them all with their nodes) or a node cannot be translated (the message names it and why)
   * @throws IllegalArgumentException when a name in {@code trainable} is not a FLOAT initializer
   */
  public static TrainableGraph translate(ModelProto model, Set<String> trainable) {
    Map<String, TensorProto> initializers = initializers(model.getGraph());
    for (String name : trainable) {
      TensorProto t = initializers.get(name);
      if (t == null || t.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
        throw new IllegalArgumentException("'" + name + "' is not a FLOAT initializer of the model");
      }
    }
    List<UnsupportedOperator> unsupported = unsupported(model);
    if (!unsupported.isEmpty()) {
      throw new CompressionException(describe(unsupported));
    }
    return GraphTranslation.translate(model, Set.copyOf(trainable));
  }

  /**
   * The model with the named initializers' values replaced, everything else (names, element types,
   * shapes, nodes, metadata, other initializers) as it was.
   *
   * @param weights new values by initializer name, in the ONNX layout and the initializer's shape
   *     (as {@link TrainableGraph#weights()} gives them)
   * @throws IllegalArgumentException when a name is no FLOAT/FLOAT16 initializer or a shape differs
   * @throws CompressionException when a value is NaN or infinite (training diverged)
   */
  public static ModelProto writeBack(ModelProto original, Map<String, INDArray> weights) {
    GraphProto.Builder graph = original.getGraph().toBuilder();
    Set<String> written = new HashSet<>();
    for (int i = 0; i < graph.getInitializerCount(); i++) {
      TensorProto t = graph.getInitializer(i);
      INDArray values = weights.get(t.getName());
      if (values == null) {
        continue;
      }
      long[] dims = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
      if (!Arrays.equals(dims, values.shape())) {
        throw new IllegalArgumentException("values for '" + t.getName() + "' have shape "
            + Arrays.toString(values.shape()) + ", the initializer " + Arrays.toString(dims));
      }
      if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE && t.getDataType() != TensorProto.DataType.FLOAT16_VALUE) {
        throw new IllegalArgumentException("'" + t.getName() + "' is "
            + OnnxTensors.dataTypeName(t.getDataType()) + ", not FLOAT or FLOAT16");
      }
      float[] floats = TensorArrays.floats(values);
      for (float f : floats) {
        if (!Float.isFinite(f)) {
          throw new CompressionException("training left a non-finite value (" + f + ") in '" + t.getName() + "'");
        }
      }
      graph.setInitializer(i, OnnxTensors.withFloats(t, floats));
      written.add(t.getName());
    }
    if (written.size() != weights.size()) {
      Set<String> missing = new LinkedHashSet<>(weights.keySet());
      missing.removeAll(written);
      throw new IllegalArgumentException("no initializers named " + missing + " in the model");
    }
    return original.toBuilder().setGraph(graph).build();
  }

  /**
   * The nodes in an order where every node comes after the producers of its inputs (Kahn's
   * algorithm; among ready nodes, graph order is kept).
   *
   * @throws CompressionException when a node reads a value nothing produces, or nodes form a cycle
   */
  static List<NodeProto> topologicalOrder(GraphProto graph) {
    Set<String> available = new HashSet<>();
    graph.getInputList().forEach(v -> available.add(v.getName()));
    graph.getInitializerList().forEach(t -> available.add(t.getName()));
    available.add("");
    List<NodeProto> nodes = graph.getNodeList();
    Map<String, Integer> producer = new HashMap<>();
    for (int i = 0; i < nodes.size(); i++) {
      for (String out : nodes.get(i).getOutputList()) {
        if (!out.isEmpty()) {
          producer.put(out, i);
        }
      }
    }
    int[] waiting = new int[nodes.size()];
    Map<Integer, List<Integer>> dependents = new HashMap<>();
    for (int i = 0; i < nodes.size(); i++) {
      Set<Integer> deps = new HashSet<>();
      for (String in : nodes.get(i).getInputList()) {
        if (available.contains(in)) {
          continue;
        }
        Integer p = producer.get(in);
        if (p == null) {
          throw new CompressionException("node " + GraphTranslation.describe(nodes.get(i)) + " reads '" + in
              + "', which no node, input or initializer provides");
        }
        deps.add(p);
      }
      waiting[i] = deps.size();
      for (int p : deps) {
        dependents.computeIfAbsent(p, k -> new ArrayList<>()).add(i);
      }
    }
    // A priority on graph position keeps the order stable for graphs that are already sorted.
    PriorityQueue<Integer> ready = new PriorityQueue<>();
    for (int i = 0; i < nodes.size(); i++) {
      if (waiting[i] == 0) {
        ready.add(i);
      }
    }
    List<NodeProto> order = new ArrayList<>(nodes.size());
    while (!ready.isEmpty()) {
      int i = ready.poll();
      order.add(nodes.get(i));
      for (int d : dependents.getOrDefault(i, List.of())) {
        if (--waiting[d] == 0) {
          ready.add(d);
        }
      }
    }
    if (order.size() != nodes.size()) {
      List<String> stuck = new ArrayList<>();
      for (int i = 0; i < nodes.size() && stuck.size() < 5; i++) {
        if (waiting[i] > 0) {
          stuck.add(GraphTranslation.describe(nodes.get(i)));
        }
      }
      throw new CompressionException("the graph has a cycle through nodes " + String.join(", ", stuck));
    }
    return order;
  }

  private static Map<String, TensorProto> initializers(GraphProto graph) {
    Map<String, TensorProto> out = new HashMap<>();
    for (TensorProto t : graph.getInitializerList()) {
      out.put(t.getName(), t);
    }
    return out;
  }
}
