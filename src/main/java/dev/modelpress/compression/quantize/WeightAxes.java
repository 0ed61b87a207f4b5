package dev.modelpress.compression.quantize;

import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * For each initializer of a graph, from its first consumer that says: the output-channel axis (one
 * scale per output for per-channel quantization) and the reduction axis (the one a dot product
 * sums over, along which groups are blocked, as GPTQ, MatMulNBits and llama.cpp block them).
 *
 * <table>
 *   <caption>Axes by consumer</caption>
 *   <tr><th>use</th><th>channel</th><th>reduction</th></tr>
 *   <tr><td>MatMul B [.., K, N]</td><td>last</td><td>K (rank − 2)</td></tr>
 *   <tr><td>MatMul A [.., M, K]</td><td>rank − 2</td><td>last</td></tr>
 *   <tr><td>Gemm B [K, N] / transB [N, K]</td><td>1 / 0</td><td>0 / 1</td></tr>
 *   <tr><td>Gemm A [M, K] / transA [K, M]</td><td>0 / 1</td><td>1 / 0</td></tr>
 *   <tr><td>Conv W [O, I, k..]</td><td>0</td><td>1</td></tr>
 *   <tr><td>ConvTranspose W [I, O/g, k..]</td><td>1</td><td>0</td></tr>
 *   <tr><td>Gather data [V, D]</td><td>0 (a scale per row)</td><td>1</td></tr>
 *   <tr><td>anything else</td><td>0</td><td>1 (0 for vectors)</td></tr>
 * </table>
 */
public final class WeightAxes {

  /** Channel and reduction axis of one initializer. */
  public record Axes(int channel, int reduction) {}

  private final Map<String, Axes> axes = new HashMap<>();
  private final Set<String> matMulOnly = new HashSet<>();

  private WeightAxes() {}

  /**
   * The axes of every initializer and {@code Constant} weight of {@code graph} (from its first
   * consumer in the graph, else in a subgraph that reads it from this scope), and which ones only
   * this graph's MatMuls read as B.
   */
  public static WeightAxes of(GraphProto graph) {
    WeightAxes w = new WeightAxes();
    Map<String, Integer> rank = new HashMap<>();
    for (TensorProto t : graph.getInitializerList()) {
      rank.put(t.getName(), t.getDimsCount());
    }
    for (NodeProto n : graph.getNodeList()) {
      TensorProto c = OnnxModels.constantWeight(n);
      if (c != null) {
        rank.put(n.getOutput(0), c.getDimsCount());
      }
    }
    Map<String, int[]> uses = new HashMap<>();
    for (NodeProto node : graph.getNodeList()) {
      for (int i = 0; i < node.getInputCount(); i++) {
        String name = node.getInput(i);
        Integer r = rank.get(name);
        if (r == null) {
          continue;
        }
        int[] u = uses.computeIfAbsent(name, k -> new int[2]);
        u[0]++;
        boolean asB = node.getOpType().equals("MatMul") && node.getDomain().isEmpty() && i == 1;
        u[1] += asB ? 1 : 0;
      }
    }
    w.learnAxes(graph, rank);
    Set<String> elsewhere = new HashSet<>();
    for (ValueInfoProto v : graph.getOutputList()) {
      elsewhere.add(v.getName());
    }
    for (NodeProto node : graph.getNodeList()) {
      for (AttributeProto a : node.getAttributeList()) {
        if (a.hasG()) {
          collectInputs(a.getG(), elsewhere);
        }
        for (GraphProto g : a.getGraphsList()) {
          collectInputs(g, elsewhere);
        }
      }
    }
    uses.forEach((name, u) -> {
      if (u[0] > 0 && u[0] == u[1] && rank.get(name) == 2 && !elsewhere.contains(name)) {
        w.matMulOnly.add(name);
      }
    });
    return w;
  }

  /** Axes from the first known consumer: this graph's nodes first, then nested subgraphs that see the name. */
  private void learnAxes(GraphProto graph, Map<String, Integer> rank) {
    for (NodeProto node : graph.getNodeList()) {
      for (int i = 0; i < node.getInputCount(); i++) {
        String name = node.getInput(i);
        Integer r = rank.get(name);
        if (r == null || r == 0 || axes.containsKey(name)) {
          continue;
        }
        Axes a = switch (node.getOpType() + ":" + i) {
          case "MatMul:1" -> new Axes(r - 1, Math.max(0, r - 2));
          case "MatMul:0" -> new Axes(Math.max(0, r - 2), r - 1);
          case "Gemm:1" -> intAttribute(node, "transB") == 1 ? new Axes(0, 1) : new Axes(1, 0);
          case "Gemm:0" -> intAttribute(node, "transA") == 1 ? new Axes(1, 0) : new Axes(0, 1);
          case "Conv:1", "Gather:0" -> new Axes(0, r >= 2 ? 1 : 0);
          case "ConvTranspose:1" -> r >= 2 ? new Axes(1, 0) : new Axes(0, 0);
          default -> null;
        };
        if (a != null && a.channel() < r && a.reduction() < r) {
          axes.put(name, a);
        }
      }
    }
    for (NodeProto node : graph.getNodeList()) {
      for (AttributeProto at : node.getAttributeList()) {
        List<GraphProto> subs = new ArrayList<>(at.getGraphsList());
        if (at.hasG()) {
          subs.add(at.getG());
        }
        for (GraphProto sub : subs) {
          Map<String, Integer> visible = new HashMap<>(rank);
          visible.keySet().removeAll(OnnxModels.definedNames(sub));
          if (!visible.isEmpty()) {
            learnAxes(sub, visible);
          }
        }
      }
    }
  }

  /** The axes of {@code name}; defaults for a tensor no known op reads. */
  public Axes of(String name, int rank) {
    Axes a = axes.get(name);
    return a != null ? a : new Axes(0, rank >= 2 ? 1 : 0);
  }

  /** Whether every use of the 2-D initializer is as input B of a main-graph MatMul (and nothing else reads it). */
  public boolean onlyMatMulWeight(String name) {
    return matMulOnly.contains(name);
  }

  /** Channel axes of the initializers some known op reads. */
  public Map<String, Integer> channelAxes() {
    Map<String, Integer> m = new HashMap<>();
    axes.forEach((k, v) -> m.put(k, v.channel()));
    return m;
  }

  private static void collectInputs(GraphProto g, Set<String> out) {
    for (NodeProto n : g.getNodeList()) {
      out.addAll(n.getInputList());
      for (AttributeProto a : n.getAttributeList()) {
        if (a.hasG()) {
          collectInputs(a.getG(), out);
        }
        for (GraphProto sub : a.getGraphsList()) {
          collectInputs(sub, out);
        }
      }
    }
  }

  private static long intAttribute(NodeProto node, String name) {
    for (AttributeProto a : node.getAttributeList()) {
      if (a.getName().equals(name)) {
        return a.getI();
      }
    }
    return 0;
  }
}
