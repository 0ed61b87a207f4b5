package dev.modelpress.compression;

import dev.modelpress.evaluation.ActivationCollector;
import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Per-channel statistics of a layer's output after its activation function, measured in ONNX
 * Runtime on the job's calibration data: the basis of structured pruning by activation
 * ({@code criterion: activation}) and of redundancy (correlation) pruning.
 *
 * <p>"After its activation function" is found in the graph: from the layer's output the chain of
 * single-consumer, channel-wise ops is followed (a bias {@code Add}/{@code Sub}/{@code Mul}/
 * {@code Div} with an initializer, {@code BatchNormalization}, {@code Relu} and the other
 * element-wise activations) and the last tensor of the chain is measured. A {@code Conv} output's
 * channels are axis 1 ([N, C, H, W], averaged over batch and space); a {@code Gemm}/{@code MatMul}
 * output's channels are its last axis (averaged over every row, e.g. every token).
 */
final class ChannelActivations {

  private static final Set<String> CHANNELWISE = Set.of("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Dropout", "Identity",
      "Elu", "Selu", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Clip", "Gelu", "Erf", "Abs");

  private ChannelActivations() {}

  /** Where one layer's activations are measured, and along which axis its channels lie. */
  record Probe(String weight, String tensor, boolean channelsAtAxisOne) {}

  /**
   * The tensor after the activation function of the layer that reads {@code weight} (its input 1).
   *
   * @throws CompressionException when no node reads the weight as its input 1
   */
  static Probe probe(GraphProto graph, String weight) {
    Map<String, List<NodeProto>> consumers = new HashMap<>();
    Set<String> initializers = new HashSet<>();
    graph.getInitializerList().forEach(t -> initializers.add(t.getName()));
    NodeProto layer = null;
    for (NodeProto n : graph.getNodeList()) {
      for (String in : n.getInputList()) {
        consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
      }
      if (layer == null && n.getInputCount() > 1 && n.getInput(1).equals(weight)) {
        layer = n;
      }
    }
    if (layer == null) {
      throw new CompressionException("no layer reads '" + weight + "' as its weight");
    }
    Set<String> outputs = new HashSet<>();
    graph.getOutputList().forEach(o -> outputs.add(o.getName()));
    String tensor = layer.getOutput(0);
    for (int depth = 0; depth < 16 && !outputs.contains(tensor); depth++) {
      List<NodeProto> next = consumers.getOrDefault(tensor, List.of());
      if (next.size() != 1) {
        break;
      }
      NodeProto n = next.getFirst();
      String op = n.getOpType();
      boolean follow = (CHANNELWISE.contains(op) || op.equals("BatchNormalization")) && n.getInput(0).equals(tensor)
          || Set.of("Add", "Sub", "Mul", "Div").contains(op) && n.getInputCount() == 2
              && initializers.contains(n.getInput(n.getInput(0).equals(tensor) ? 1 : 0));
      if (!follow) {
        break;
      }
      tensor = n.getOutput(0);
    }
    return new Probe(weight, tensor, layer.getOpType().equals("Conv"));
  }

  /**
   * Mean |activation| of every channel of each probe over the calibration samples, keyed by weight.
   *
   * @throws CompressionException without calibration data, or when the calibration run fails
   */
  static Map<String, double[]> meanAbs(ModelProto model, List<Probe> probes, PipelineContext ctx, String why,
      PruningSteps.ItemProgress progress) {
    requireCalibration(ctx, why);
    Map<String, double[]> sums = new LinkedHashMap<>();
    Map<String, long[]> counts = new HashMap<>();
    Map<String, List<Probe>> byTensor = new LinkedHashMap<>();
    probes.forEach(p -> byTensor.computeIfAbsent(p.tensor(), k -> new ArrayList<>()).add(p));
    try (ActivationCollector collector = ActivationCollector.open(model, byTensor.keySet(), ctx.workDir(),
        ctx.intraOpThreads())) {
      collector.run(ctx.calibration(), ctx.batchSize(), ctx.maxCalibrationSamples(), (batch, n, values) -> {
        progress.at(0, 1, "measuring channel activations, batch " + (batch + 1));
        values.forEach((tensor, a) -> {
          for (Probe p : byTensor.get(tensor)) {
            accumulate(a, p.channelsAtAxisOne(), sums.computeIfAbsent(p.weight(), k -> new double[channels(a, p)]),
                counts.computeIfAbsent(p.weight(), k -> new long[1]), tensor);
          }
        });
      });
    } catch (EvaluationException e) {
      throw new CompressionException("calibration run failed: " + e.getMessage());
    }
    Map<String, double[]> means = new LinkedHashMap<>();
    sums.forEach((w, s) -> {
      long n = Math.max(1, counts.get(w)[0]);
      double[] m = new double[s.length];
      for (int c = 0; c < s.length; c++) {
        m[c] = s[c] / n;
      }
      means.put(w, m);
    });
    return means;
  }

  static void requireCalibration(PipelineContext ctx, String why) {
    if (ctx == null || !ctx.hasCalibration()) {
      throw new CompressionException(why + " needs calibration data: give the job a calibrationDatasetId");
    }
  }

  private static int channels(ActivationCollector.Activation a, Probe p) {
    long[] shape = a.shape();
    if (p.channelsAtAxisOne()) {
      if (shape.length < 2) {
        throw new CompressionException("activation '" + p.tensor() + "' has rank " + shape.length
            + "; a Conv output has its channels on axis 1");
      }
      return Math.toIntExact(shape[1]);
    }
    return a.rowWidth();
  }

  /** Adds Σ|a| per channel; {@code count} counts the values each channel received. */
  private static void accumulate(ActivationCollector.Activation a, boolean axisOne, double[] sum, long[] count,
      String tensor) {
    float[] v = a.values();
    long[] shape = a.shape();
    int c = sum.length;
    if (axisOne) {
      if (shape[1] != c) {
        throw new CompressionException("activation '" + tensor + "' changed its channel count between batches");
      }
      long inner = 1;
      for (int i = 2; i < shape.length; i++) {
        inner *= shape[i];
      }
      for (int i = 0; i < v.length; i++) {
        sum[(int) ((i / inner) % c)] += Math.abs(v[i]);
      }
      count[0] += v.length / c;
    } else {
      if (a.rowWidth() != c) {
        throw new CompressionException("activation '" + tensor + "' changed its width between batches");
      }
      for (int i = 0; i < v.length; i++) {
        sum[i % c] += Math.abs(v[i]);
      }
      count[0] += v.length / c;
    }
  }
}
