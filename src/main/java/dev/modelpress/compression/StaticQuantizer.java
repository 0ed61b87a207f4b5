package dev.modelpress.compression;

import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Where static quantization puts QuantizeLinear/DequantizeLinear pairs on activations, and the
 * rewrite that puts them there.
 *
 * <p>Placement rules (the ones that keep accuracy and let ONNX Runtime fuse QDQ into integer
 * kernels such as QLinearMatMul, MatMulIntegerToFloat and QLinearConv):
 * <ul>
 *   <li>Only the data inputs of {@code MatMul} (A and B), {@code Gemm} (A and B) and {@code Conv}
 *       (X, and W when it is computed) are quantized: the matrix products hold nearly all the
 *       arithmetic, and integer kernels exist for them. Activation × activation products (attention
 *       scores, attention × values) are included.
 *   <li>Nothing else gets a pair: Softmax, LayerNormalization and its decomposed
 *       ReduceMean/Sub/Pow/Sqrt/Div, Gelu/Erf, residual Add and biases stay float, so their
 *       wide-range or precision-critical internals are never rounded.
 *   <li>Initializers and {@code Constant} outputs are weights, quantized by the weight quantizer,
 *       not by a calibrated pair. A node whose weight the step's include/exclude leaves out keeps all
 *       its inputs float.
 *   <li>Only floating-point tensors are quantized (ONNX Runtime reports each candidate's type
 *       during calibration); integer and boolean tensors (ids, masks, shapes) are skipped.
 *   <li>Only the edge into the quantized node reads the dequantized value; other consumers of the
 *       same tensor (shape computations, residual branches) keep reading the float tensor, so a
 *       tensor that feeds only shape operators is never touched.
 *   <li>One pair per tensor, shared by all its quantized consumers, per-tensor scale: uint8 with a
 *       zero point (asymmetric) by default, int8 with zero point 0 when symmetric.
 *   <li>Outputs of {@code Softmax} and {@code Sigmoid} get their known range [0, 1] whatever the
 *       calibrator: clipping a probability (which percentile and entropy do, since nearly all
 *       attention weights are tiny) destroys exactly the large weights attention depends on.
 * </ul>
 */
final class StaticQuantizer {

  private StaticQuantizer() {}

  /** Inputs of the node producing {@code output} that read a quantized activation, by input index. */
  record Plan(Map<String, Set<Edge>> edges, List<String> skipped) {
    Set<String> tensors() {
      return edges.keySet();
    }
  }

  /** Input {@code input} of the node whose first output is {@code nodeOutput}. */
  record Edge(String nodeOutput, int input) {}

  /** A quantized activation's parameters. */
  record Params(float scale, int zeroPoint) {}

  /** Which activation edges get a QDQ pair, given the weights the step selected. */
  static Plan plan(GraphProto graph, Set<String> selectedWeights) {
    Set<String> constants = new HashSet<>();
    graph.getInitializerList().forEach(t -> constants.add(t.getName()));
    for (NodeProto n : graph.getNodeList()) {
      if (n.getOpType().equals("Constant")) {
        constants.addAll(n.getOutputList());
      }
    }
    Map<String, Set<Edge>> edges = new LinkedHashMap<>();
    List<String> skipped = new ArrayList<>();
    for (NodeProto n : graph.getNodeList()) {
      int[] dataInputs = switch (n.getOpType()) {
        case "MatMul", "Gemm", "Conv" -> new int[] {0, 1};
        default -> new int[0];
      };
      if (dataInputs.length == 0 || n.getOutputCount() == 0) {
        continue;
      }
      String excludedWeight = null;
      for (int i : dataInputs) {
        String in = i < n.getInputCount() ? n.getInput(i) : "";
        if (constants.contains(in) && !selectedWeights.contains(in)) {
          excludedWeight = in;
        }
      }
      if (excludedWeight != null) {
        skipped.add(describe(n) + ": its weight '" + excludedWeight + "' is not selected, so the node stays float");
        continue;
      }
      for (int i : dataInputs) {
        String in = i < n.getInputCount() ? n.getInput(i) : "";
        if (in.isEmpty() || constants.contains(in)) {
          continue;
        }
        edges.computeIfAbsent(in, k -> new java.util.LinkedHashSet<>()).add(new Edge(n.getOutput(0), i));
      }
    }
    return new Plan(edges, skipped);
  }

  /** Tensors produced by Softmax or Sigmoid: probabilities, range [0, 1]. */
  static Set<String> probabilityOutputs(GraphProto graph) {
    Set<String> out = new HashSet<>();
    for (NodeProto n : graph.getNodeList()) {
      if (n.getOpType().equals("Softmax") || n.getOpType().equals("Sigmoid")) {
        out.addAll(n.getOutputList());
      }
    }
    return out;
  }

  private static String describe(NodeProto n) {
    return n.getOpType() + " '" + (n.getName().isEmpty() ? n.getOutput(0) : n.getName()) + "'";
  }

  /**
   * Inserts a QuantizeLinear → DequantizeLinear pair for every planned tensor that has parameters,
   * right before its first quantized consumer, and points the planned edges at the dequantized value.
   */
  static GraphProto insert(GraphProto graph, Plan plan, Map<String, Params> params, boolean symmetric) {
    Set<String> names = new HashSet<>();
    graph.getInitializerList().forEach(t -> names.add(t.getName()));
    graph.getInputList().forEach(v -> names.add(v.getName()));
    graph.getOutputList().forEach(v -> names.add(v.getName()));
    for (NodeProto n : graph.getNodeList()) {
      names.addAll(n.getInputList());
      names.addAll(n.getOutputList());
      names.add(n.getName());
    }
    Map<String, String> dequantized = new LinkedHashMap<>();
    Map<String, Map<Integer, String>> rewired = new LinkedHashMap<>();
    GraphProto.Builder g = graph.toBuilder().clearNode();
    for (var e : plan.edges().entrySet()) {
      if (!params.containsKey(e.getKey())) {
        continue;
      }
      String dq = fresh(names, e.getKey() + "_DequantizeLinear_Output");
      dequantized.put(e.getKey(), dq);
      for (Edge edge : e.getValue()) {
        rewired.computeIfAbsent(edge.nodeOutput(), k -> new LinkedHashMap<>()).put(edge.input(), dq);
      }
    }
    Set<String> emitted = new HashSet<>();
    for (NodeProto n : graph.getNodeList()) {
      Map<Integer, String> inputs = n.getOutputCount() == 0 ? null : rewired.get(n.getOutput(0));
      if (inputs == null) {
        g.addNode(n);
        continue;
      }
      NodeProto.Builder b = n.toBuilder();
      for (var in : inputs.entrySet()) {
        String tensor = n.getInput(in.getKey());
        if (emitted.add(tensor)) {
          emitPair(g, names, tensor, dequantized.get(tensor), params.get(tensor), symmetric);
        }
        b.setInput(in.getKey(), in.getValue());
      }
      g.addNode(b);
    }
    return g.build();
  }

  private static void emitPair(GraphProto.Builder g, Set<String> names, String tensor, String output, Params p,
      boolean symmetric) {
    String scale = fresh(names, tensor + "_scale");
    String zero = fresh(names, tensor + "_zero_point");
    String quantized = fresh(names, tensor + "_QuantizeLinear_Output");
    g.addInitializer(TensorProto.newBuilder().setName(scale).setDataType(TensorProto.DataType.FLOAT_VALUE)
        .setRawData(com.google.protobuf.ByteString.copyFrom(
            ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(0, p.scale()).array())));
    g.addInitializer(TensorProto.newBuilder().setName(zero)
        .setDataType(symmetric ? TensorProto.DataType.INT8_VALUE : TensorProto.DataType.UINT8_VALUE)
        .setRawData(com.google.protobuf.ByteString.copyFrom(new byte[] {(byte) p.zeroPoint()})));
    g.addNode(NodeProto.newBuilder().setName(fresh(names, tensor + "_QuantizeLinear")).setOpType("QuantizeLinear")
        .addInput(tensor).addInput(scale).addInput(zero).addOutput(quantized));
    g.addNode(NodeProto.newBuilder().setName(fresh(names, tensor + "_DequantizeLinear")).setOpType("DequantizeLinear")
        .addInput(quantized).addInput(scale).addInput(zero).addOutput(output));
  }

  /** Scale and zero point for an activation range: uint8 asymmetric, or int8 symmetric. */
  static Params params(double low, double high, boolean symmetric) {
    low = Math.min(low, 0);
    high = Math.max(high, 0);
    if (symmetric) {
      float scale = (float) (Math.max(-low, high) / 127.0);
      return new Params(scale > 0 ? scale : 1f, 0);
    }
    float scale = (float) ((high - low) / 255.0);
    if (!(scale > 0)) {
      return new Params(1f, 0);
    }
    int zero = (int) Math.max(0, Math.min(255, Math.rint(-low / scale)));
    return new Params(scale, zero);
  }

  private static String fresh(Set<String> names, String base) {
    String name = base;
    for (int i = 1; names.contains(name); i++) {
      name = base + "_" + i;
    }
    names.add(name);
    return name;
  }
}
