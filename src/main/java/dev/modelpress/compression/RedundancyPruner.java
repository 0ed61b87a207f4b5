package dev.modelpress.compression;

import dev.modelpress.evaluation.ActivationCollector;
import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Redundancy (correlation) pruning of Gemm/MatMul neurons: on calibration data, a neuron whose
 * activation (after its activation function) another kept neuron predicts almost perfectly is
 * removed, and its contribution is folded into the next layer for its twin.
 *
 * <p>With a_j ≈ α·a_i + β (least squares over the calibration rows: α = cov(i, j)/var(i),
 * β = mean(j) − α·mean(i)) the next linear layer computes y = Σ_k a_k·W_k + b ≈ Σ_{k≠j} a_k·W'_k +
 * b' with W'_i = W_i + α·W_j and b' = b + β·W_j (W_k the next layer's row for input k). The
 * relation is measured on the activations the next layer actually reads, so it holds through any
 * activation function; a neuron that is constant on the data (a dead Relu) is all β. The fold
 * leaves an output error of var(a_j)·(1 − r²)·‖W_j‖² on the calibration rows (r the Pearson
 * correlation), which is how candidates are ranked: neurons are removed greedily, lowest remaining
 * error first, each with its best kept twin, until the layer has lost {@code sparsity} of its
 * neurons or no neuron left has |r| ≥ {@code threshold} with a kept twin (constant neurons always
 * qualify). The cut itself (weights, bias, next layer's rows) is {@link StructuredPruner}'s.
 *
 * <p>Layers are handled one after another in graph order and each is measured on the model its
 * predecessors left, so the folds compose. A layer whose activation is not read by exactly one
 * Gemm/MatMul with an initializer weight (a residual Add, a Softmax, a graph output) is skipped
 * with the reason, or fails the step when {@code include} names it.
 */
final class RedundancyPruner {

  /** Rows of the fold list reported per layer at most. */
  private static final int REPORTED_FOLDS = 64;

  /** One removed neuron and where it went ({@code twin} −1 for a constant neuron, folded into the bias only). */
  record Fold(int removed, int twin, double r, double alpha, double beta) {}

  private RedundancyPruner() {}

  static PruningSteps.Structured apply(ModelProto model, List<TensorInfo> selected, PruneSpec spec, PipelineContext ctx,
      PruningSteps.ItemProgress run) {
    ChannelActivations.requireCalibration(ctx, "correlation pruning");
    boolean explicit = !spec.include().isEmpty();
    Set<String> weights = new LinkedHashSet<>();
    selected.forEach(t -> weights.add(t.name()));
    List<String> layers = new ArrayList<>();
    for (NodeProto n : model.getGraph().getNodeList()) {
      if ((n.getOpType().equals("Gemm") || n.getOpType().equals("MatMul")) && n.getInputCount() > 1
          && weights.contains(n.getInput(1))) {
        layers.add(n.getInput(1));
      }
    }
    long paramsBefore = OnnxModels.summarize(model).parameterCount();
    ModelProto current = model;
    Map<String, String> skipped = new LinkedHashMap<>();
    List<Map<String, Object>> done = new ArrayList<>();
    Set<String> changed = new LinkedHashSet<>();
    int samples = 0;
    for (int l = 0; l < layers.size(); l++) {
      String weight = layers.get(l);
      run.at(l, layers.size(), "correlation pruning " + weight);
      try {
        Layer layer = Layer.find(current.getGraph(), weight);
        Moments m = measure(current, layer.activation(), ctx);
        samples = Math.max(samples, m.samples);
        double[][] rows = layer.consumerRows();
        List<Fold> folds = choose(m, rows, spec);
        if (folds.isEmpty()) {
          skipped.put(weight, "no neuron has |r| >= " + threshold(spec) + " with another one");
          continue;
        }
        boolean[] removed = new boolean[m.width];
        for (Fold f : folds) {
          removed[f.removed()] = true;
        }
        // choose() applied the α terms to the rows; the bias collects the β terms.
        GraphProto folded = layer.rewrite(rows, foldedBias(layer, folds));
        StructuredPruner.Outcome cut = StructuredPruner.prune(folded, spec, Set.of(weight), true,
            (w, values, dims, outAxis, count) -> {
              if (count != removed.length) {
                throw new StructuredPruner.Refusal("the layer has " + count + " neurons but its activation has "
                    + removed.length);
              }
              return removed;
            }, (item, items) -> {});
        current = current.toBuilder().setGraph(cut.graph()).build();
        StructuredPruner.Layer info = cut.layers().getFirst();
        changed.addAll(info.tensorsChanged());
        changed.add(layer.consumerWeight());
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("node", info.node());
        d.put("weight", weight);
        d.put("activation", layer.activation());
        d.put("consumer", layer.consumerWeight());
        d.put("neuronsBefore", info.channelsBefore());
        d.put("neuronsAfter", info.channelsAfter());
        d.put("minAbsR", folds.stream().filter(f -> f.twin() >= 0).mapToDouble(f -> Math.abs(f.r())).min().orElse(1));
        d.put("constantNeurons", folds.stream().filter(f -> f.twin() < 0).count());
        d.put("folds", folds.stream().limit(REPORTED_FOLDS).map(f -> Map.of("removed", f.removed(), "twin", f.twin(),
            "r", f.r(), "alpha", f.alpha(), "beta", f.beta())).toList());
        done.add(d);
      } catch (StructuredPruner.Refusal | CompressionException e) {
        if (explicit) {
          throw new CompressionException("correlation pruning cannot remove neurons of '" + weight + "': "
              + e.getMessage());
        }
        skipped.put(weight, e.getMessage());
      }
    }
    run.at(layers.size(), layers.size(), "correlation pruning done");
    if (done.isEmpty()) {
      String why = skipped.isEmpty() ? "no Gemm or MatMul layer with an initializer weight is selected"
          : String.join("; ", skipped.entrySet().stream().map(e -> "'" + e.getKey() + "': " + e.getValue()).toList());
      throw new CompressionException("correlation pruning removed no neuron: " + why);
    }
    long paramsAfter = OnnxModels.summarize(current).parameterCount();
    List<TensorReport> tensors = reports(model, current, changed);
    Map<String, Object> details = new LinkedHashMap<>();
    details.put("method", PruneSpec.CORRELATION);
    if (spec.sparsity() != null) {
      details.put("sparsity", spec.sparsity());
    } else {
      details.put("threshold", threshold(spec));
    }
    details.put("calibrationSamples", samples);
    details.put("modelParametersBefore", paramsBefore);
    details.put("modelParametersAfter", paramsAfter);
    details.put("layers", done);
    details.put("skipped", skipped);
    int removedTotal = done.stream().mapToInt(d -> (int) d.get("neuronsBefore") - (int) d.get("neuronsAfter")).sum();
    String summary = String.format(Locale.ROOT, "correlation pruning removed %d redundant neurons of %d layers%s "
        + "and folded them into the next layer (%s): model parameters %d -> %d (%.1f%%)", removedTotal, done.size(),
        skipped.isEmpty() ? "" : " (" + skipped.size() + " skipped, see details)",
        spec.sparsity() != null ? String.format(Locale.ROOT, "%.0f%% per layer", 100 * spec.sparsity())
            : "|r| >= " + threshold(spec), paramsBefore, paramsAfter, 100.0 * paramsAfter / Math.max(1, paramsBefore));
    return new PruningSteps.Structured(current, summary, tensors, details);
  }

  static double threshold(PruneSpec spec) {
    return spec.threshold() != null ? spec.threshold() : PruneSpec.DEFAULT_CORRELATION;
  }

  // ---- statistics ---------------------------------------------------------------------------

  /** Σa and Σa·aᵀ of one activation over all calibration rows, in double precision. */
  static final class Moments {
    final int width;
    final double[] sum;
    final double[] gram;
    long rows;
    int samples;

    Moments(int width) {
      this.width = width;
      this.sum = new double[width];
      this.gram = new double[width * width];
    }

    void add(float[] values) {
      int n = values.length / width;
      if (n == 0) {
        return;
      }
      double[] d = new double[values.length];
      for (int i = 0; i < d.length; i++) {
        d[i] = values[i];
        sum[i % width] += values[i];
      }
      try (INDArray x = Nd4j.create(d, new long[] {n, width}, 'c');
          INDArray xtx = x.transpose().mmul(x)) {
        double[] g = xtx.dup('c').data().asDouble();
        for (int i = 0; i < g.length; i++) {
          gram[i] += g[i];
        }
      }
      rows += n;
    }

    double mean(int i) {
      return sum[i] / rows;
    }

    double cov(int i, int j) {
      return gram[i * width + j] / rows - mean(i) * mean(j);
    }
  }

  private static Moments measure(ModelProto model, String tensor, PipelineContext ctx) {
    Moments[] m = new Moments[1];
    try (ActivationCollector collector = ActivationCollector.open(model, List.of(tensor), ctx.workDir(),
        ctx.intraOpThreads())) {
      int samples = collector.run(ctx.calibration(), ctx.batchSize(), ctx.maxCalibrationSamples(), (batch, n, values) -> {
        ActivationCollector.Activation a = values.get(tensor);
        if (a == null) {
          throw new CompressionException("activation '" + tensor + "' is not a float tensor");
        }
        if (m[0] == null) {
          m[0] = new Moments(a.rowWidth());
        } else if (m[0].width != a.rowWidth()) {
          throw new CompressionException("activation '" + tensor + "' changed its width between batches");
        }
        m[0].add(a.values());
      });
      m[0].samples = samples;
    } catch (EvaluationException e) {
      throw new CompressionException("calibration run failed: " + e.getMessage());
    }
    return m[0];
  }

  // ---- choosing -----------------------------------------------------------------------------

  /**
   * The folds, greedily by lowest remaining output error; applies each fold's α to {@code rows}
   * (the next layer's rows, one per neuron) as it goes, so later errors see the grown rows.
   */
  static List<Fold> choose(Moments m, double[][] rows, PruneSpec spec) {
    int n = m.width;
    if (rows.length != n) {
      throw new StructuredPruner.Refusal("the next layer reads " + rows.length + " inputs but the activation has " + n);
    }
    double[] var = new double[n];
    double maxVar = 0;
    for (int i = 0; i < n; i++) {
      var[i] = Math.max(0, m.cov(i, i));
      maxVar = Math.max(maxVar, var[i]);
    }
    // A neuron whose variance is at rounding level of the largest is constant on the data.
    double constant = Math.max(1e-30, maxVar * 1e-12);
    boolean[] removed = new boolean[n];
    int[] twin = new int[n];
    double[] r = new double[n];
    for (int j = 0; j < n; j++) {
      bestTwin(m, var, constant, removed, j, twin, r);
    }
    int target = spec.sparsity() != null ? (int) Math.min(n - 1L, (long) Math.floor(spec.sparsity() * n + 1e-9)) : n - 1;
    double minR = spec.sparsity() != null ? 0 : threshold(spec);
    List<Fold> folds = new ArrayList<>();
    while (folds.size() < target) {
      int best = -1;
      double bestError = Double.POSITIVE_INFINITY;
      for (int j = 0; j < n; j++) {
        if (removed[j]) {
          continue;
        }
        boolean isConstant = var[j] <= constant;
        if (!isConstant && (twin[j] < 0 || Math.abs(r[j]) < minR)) {
          continue;
        }
        double norm = 0;
        for (double w : rows[j]) {
          norm += w * w;
        }
        double error = isConstant ? 0 : var[j] * (1 - r[j] * r[j]) * norm;
        if (error < bestError) {
          bestError = error;
          best = j;
        }
      }
      if (best < 0) {
        break;
      }
      int j = best;
      Fold f;
      if (var[j] <= constant) {
        f = new Fold(j, -1, 1, 0, m.mean(j));
      } else {
        int i = twin[j];
        double alpha = m.cov(i, j) / var[i];
        f = new Fold(j, i, r[j], alpha, m.mean(j) - alpha * m.mean(i));
        for (int o = 0; o < rows[i].length; o++) {
          rows[i][o] += alpha * rows[j][o];
        }
      }
      folds.add(f);
      removed[j] = true;
      for (int k = 0; k < n; k++) {
        if (!removed[k] && twin[k] == j) {
          bestTwin(m, var, constant, removed, k, twin, r);
        }
      }
    }
    return folds;
  }

  private static void bestTwin(Moments m, double[] var, double constant, boolean[] removed, int j, int[] twin,
      double[] r) {
    twin[j] = -1;
    r[j] = 0;
    if (var[j] <= constant) {
      return;
    }
    double best = -1;
    for (int i = 0; i < var.length; i++) {
      if (i == j || removed[i] || var[i] <= constant) {
        continue;
      }
      double c = m.cov(i, j) / Math.sqrt(var[i] * var[j]);
      if (c * c > best) {
        best = c * c;
        twin[j] = i;
        r[j] = Math.max(-1, Math.min(1, c));
      }
    }
  }

  // ---- the layer and its consumer -----------------------------------------------------------

  /** The consumer's bias after the folds: β·W_j of every removed neuron j, on the original rows. */
  private static double[] foldedBias(Layer layer, List<Fold> folds) {
    double[] bias = new double[layer.outputs()];
    // A removed row received no fold (a removed neuron is never a twin afterwards, and folds into
    // it before its removal are carried on to its own twin), so its current row is what to add.
    for (Fold f : folds) {
      double[] row = layer.currentRows()[f.removed()];
      for (int o = 0; o < bias.length; o++) {
        bias[o] += f.beta() * row[o];
      }
    }
    return bias;
  }

  /**
   * A neuron layer whose activation is read by exactly one Gemm/MatMul with an initializer weight:
   * the consumer's rows (one per neuron) and where its bias lives.
   */
  private static final class Layer {
    private final GraphProto graph;
    private final String activation;
    private final NodeProto consumer;
    private final TensorProto consumerWeight;
    private final boolean transposed;
    private final int inputs;
    private final int outputs;
    private final NodeProto biasAdd;
    private final TensorProto bias;
    private double[][] current;

    private Layer(GraphProto graph, String activation, NodeProto consumer, TensorProto consumerWeight,
        boolean transposed, NodeProto biasAdd, TensorProto bias) {
      this.graph = graph;
      this.activation = activation;
      this.consumer = consumer;
      this.consumerWeight = consumerWeight;
      this.transposed = transposed;
      this.inputs = (int) consumerWeight.getDims(transposed ? 1 : 0);
      this.outputs = (int) consumerWeight.getDims(transposed ? 0 : 1);
      this.biasAdd = biasAdd;
      this.bias = bias;
    }

    static Layer find(GraphProto g, String weight) {
      ChannelActivations.Probe probe = ChannelActivations.probe(g, weight);
      if (probe.channelsAtAxisOne()) {
        throw new StructuredPruner.Refusal("correlation pruning folds Gemm/MatMul neurons, not Conv channels");
      }
      String t = probe.tensor();
      if (g.getOutputList().stream().anyMatch(o -> o.getName().equals(t))) {
        throw new StructuredPruner.Refusal("its activation '" + t + "' is a graph output");
      }
      Map<String, TensorProto> inits = new HashMap<>();
      g.getInitializerList().forEach(x -> inits.put(x.getName(), x));
      Map<String, List<NodeProto>> readers = new HashMap<>();
      for (NodeProto n : g.getNodeList()) {
        for (String in : n.getInputList()) {
          readers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
        }
      }
      List<NodeProto> uses = readers.getOrDefault(t, List.of());
      if (uses.size() != 1) {
        throw new StructuredPruner.Refusal("its activation '" + t + "' is read by " + uses.size()
            + " nodes; the fold needs exactly one linear consumer");
      }
      NodeProto c = uses.getFirst();
      String op = c.getOpType();
      if (!(op.equals("Gemm") || op.equals("MatMul")) || !c.getInput(0).equals(t) || c.getInputCount() < 2
          || (op.equals("Gemm") && intAttr(c, "transA") != 0)) {
        throw new StructuredPruner.Refusal("its activation '" + t + "' is read by " + op + " node '" + c.getName()
            + "', not as the data input of a Gemm or MatMul: its contribution cannot be folded");
      }
      TensorProto w = inits.get(c.getInput(1));
      if (w == null || w.getDimsCount() != 2 || readers.get(w.getName()).size() != 1) {
        throw new StructuredPruner.Refusal("the next layer's weight '" + c.getInput(1)
            + "' is not a 2-D initializer read only by it");
      }
      requireFloat(w);
      boolean transposed = op.equals("Gemm") && intAttr(c, "transB") == 1;
      int outs = (int) w.getDims(transposed ? 0 : 1);
      NodeProto biasAdd = null;
      TensorProto bias = null;
      if (op.equals("Gemm")) {
        if (c.getInputCount() > 2 && !c.getInput(2).isEmpty()) {
          bias = inits.get(c.getInput(2));
          if (bias == null || readers.get(bias.getName()).size() != 1) {
            throw new StructuredPruner.Refusal("the next layer's bias '" + c.getInput(2)
                + "' is not an initializer read only by it");
          }
          if (floatAttr(c, "beta") != 1f) {
            throw new StructuredPruner.Refusal("the next layer's Gemm scales its bias (beta != 1)");
          }
        }
        if (floatAttr(c, "alpha") != 1f) {
          throw new StructuredPruner.Refusal("the next layer's Gemm scales its product (alpha != 1)");
        }
      } else {
        List<NodeProto> next = readers.getOrDefault(c.getOutput(0), List.of());
        if (next.size() == 1 && next.getFirst().getOpType().equals("Add")) {
          NodeProto add = next.getFirst();
          TensorProto b = inits.get(add.getInput(add.getInput(0).equals(c.getOutput(0)) ? 1 : 0));
          if (b != null && OnnxTensors.elementCount(b.getDimsList()) == outs && readers.get(b.getName()).size() == 1
              && b.getDims(b.getDimsCount() - 1) == outs) {
            biasAdd = add;
            bias = b;
          }
        }
      }
      if (bias != null) {
        requireFloat(bias);
        long count = OnnxTensors.elementCount(bias.getDimsList());
        if (count != outs && count != 1) {
          throw new StructuredPruner.Refusal("the next layer's bias '" + bias.getName() + "' has " + count
              + " values for " + outs + " outputs");
        }
      }
      return new Layer(g, t, c, w, transposed, biasAdd, bias);
    }

    String activation() {
      return activation;
    }

    String consumerWeight() {
      return consumerWeight.getName();
    }

    int outputs() {
      return outputs;
    }

    /** The consumer's weight as one row of {@code outputs} per input neuron; later folds update them. */
    double[][] consumerRows() {
      float[] w = OnnxTensors.toFloats(consumerWeight);
      double[][] rows = new double[inputs][outputs];
      for (int k = 0; k < inputs; k++) {
        for (int o = 0; o < outputs; o++) {
          rows[k][o] = transposed ? w[o * inputs + k] : w[k * outputs + o];
        }
      }
      current = rows;
      return rows;
    }

    double[][] currentRows() {
      return current;
    }

    /** The graph with the consumer's weight replaced by {@code rows} and {@code extraBias} added to its bias. */
    GraphProto rewrite(double[][] rows, double[] extraBias) {
      float[] w = new float[inputs * outputs];
      for (int k = 0; k < inputs; k++) {
        for (int o = 0; o < outputs; o++) {
          w[transposed ? o * inputs + k : k * outputs + o] = (float) rows[k][o];
        }
      }
      GraphProto.Builder g = graph.toBuilder();
      for (int i = 0; i < g.getInitializerCount(); i++) {
        TensorProto t = g.getInitializer(i);
        if (t.getName().equals(consumerWeight.getName())) {
          g.setInitializer(i, OnnxTensors.withFloats(t, w));
        } else if (bias != null && t.getName().equals(bias.getName())) {
          float[] b = OnnxTensors.toFloats(t);
          float[] out = new float[outputs];
          for (int o = 0; o < outputs; o++) {
            out[o] = (float) ((b.length == 1 ? b[0] : b[o]) + extraBias[o]);
          }
          TensorProto.Builder shaped = t.toBuilder();
          if (b.length == 1) {
            shaped.clearDims().addDims(outputs);
          }
          g.setInitializer(i, OnnxTensors.withFloats(shaped.build(), out));
        }
      }
      if (bias == null) {
        float[] out = new float[outputs];
        for (int o = 0; o < outputs; o++) {
          out[o] = (float) extraBias[o];
        }
        String name = uniqueName(graph, consumerWeight.getName() + "_folded_bias");
        TensorProto b = OnnxTensors.floatTensor(name, out, outputs);
        if (consumerWeight.getDataType() == TensorProto.DataType.FLOAT16_VALUE) {
          throw new StructuredPruner.Refusal("the next layer has no bias and fp16 weights; a folded bias cannot be added");
        }
        g.addInitializer(b);
        for (int i = 0; i < g.getNodeCount(); i++) {
          NodeProto n = g.getNode(i);
          if (!n.equals(consumer)) {
            continue;
          }
          if (n.getOpType().equals("Gemm")) {
            NodeProto.Builder nb = n.toBuilder();
            while (nb.getInputCount() < 3) {
              nb.addInput("");
            }
            g.setNode(i, nb.setInput(2, name));
          } else {
            // MatMul without a bias Add: a new Add after it carries the folded bias.
            String product = uniqueName(graph, n.getOutput(0) + "_before_folded_bias");
            g.setNode(i, n.toBuilder().setOutput(0, product));
            g.addNode(i + 1, NodeProto.newBuilder().setOpType("Add").setName(name + "_add")
                .addInput(product).addInput(name).addOutput(n.getOutput(0)));
          }
          break;
        }
      }
      return g.build();
    }
  }

  private static String uniqueName(GraphProto g, String base) {
    Set<String> names = new java.util.HashSet<>();
    g.getInitializerList().forEach(t -> names.add(t.getName()));
    g.getNodeList().forEach(n -> {
      names.addAll(n.getOutputList());
      names.add(n.getName());
    });
    String name = base;
    for (int i = 1; names.contains(name); i++) {
      name = base + "_" + i;
    }
    return name;
  }

  private static void requireFloat(TensorProto t) {
    if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE && t.getDataType() != TensorProto.DataType.FLOAT16_VALUE) {
      throw new StructuredPruner.Refusal("initializer '" + t.getName() + "' is "
          + OnnxTensors.dataTypeName(t.getDataType()) + "; only FLOAT and FLOAT16 tensors can be folded");
    }
  }

  private static long intAttr(NodeProto n, String name) {
    for (AttributeProto a : n.getAttributeList()) {
      if (a.getName().equals(name)) {
        return a.getI();
      }
    }
    return 0;
  }

  private static float floatAttr(NodeProto n, String name) {
    for (AttributeProto a : n.getAttributeList()) {
      if (a.getName().equals(name)) {
        return a.getF();
      }
    }
    return 1f;
  }

  private static List<TensorReport> reports(ModelProto before, ModelProto after, Set<String> names) {
    Map<String, TensorProto> old = new HashMap<>();
    before.getGraph().getInitializerList().forEach(t -> old.put(t.getName(), t));
    List<TensorReport> out = new ArrayList<>();
    for (TensorProto t : after.getGraph().getInitializerList()) {
      TensorProto o = old.get(t.getName());
      if (o == null || !names.contains(t.getName())) {
        continue;
      }
      int width = t.getDataType() == TensorProto.DataType.FLOAT16_VALUE ? 2 : 4;
      long was = OnnxTensors.elementCount(o.getDimsList());
      long now = OnnxTensors.elementCount(t.getDimsList());
      out.add(new TensorReport(t.getName(), t.getDimsList(), now, was * width, now * width, 0, 0, null, null, null, null));
    }
    return out;
  }
}
