package dev.modelpress.compression;

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
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The pipeline's N:M, structured and weight-sharing steps, and the default rule of what pruning
 * leaves alone. Kept apart from {@link OnnxPipeline} so each method's bookkeeping stays in one place.
 */
final class PruningSteps {

  /** Appended to "selects no tensor" when the default protections emptied the selection. */
  static final String PROTECTED_HINT = ": biases, normalization parameters, embedding tables and the final "
      + "classifier are not pruned by default; name them in include to prune them";

  /** Receives progress within a step; may cancel by throwing. */
  @FunctionalInterface
  interface ItemProgress {
    void at(int item, int items, String message);
  }

  private PruningSteps() {}

  // ---- N:M ----------------------------------------------------------------------------------

  static List<TensorReport> nm(GraphProto.Builder g, List<TensorInfo> selected, PruneSpec spec, ItemProgress run) {
    Map<String, Integer> index = new HashMap<>();
    for (int i = 0; i < g.getInitializerCount(); i++) {
      index.put(g.getInitializer(i).getName(), i);
    }
    Map<String, Integer> axes = reductionAxes(g.build());
    List<TensorReport> reports = new ArrayList<>();
    int n = selected.size();
    for (int j = 0; j < n; j++) {
      TensorInfo info = selected.get(j);
      run.at(j, n, "N:M pruning " + info.name());
      Integer axis = axes.get(info.name());
      if (axis == null) {
        throw new CompressionException("tensor '" + info.name() + "' feeds no MatMul, Gemm or Conv weight input, so it "
            + "has no input axis for N:M groups (exclude it)");
      }
      int at = index.get(info.name());
      TensorProto original = g.getInitializer(at);
      float[] w = OnnxTensors.toFloats(original);
      MagnitudePruner.requireFinite(info.name(), w);
      float[] before = w.clone();
      NmPruner.prune(info.name(), w, info.shape(), axis, spec.n(), spec.m());
      ErrorStats stats = new ErrorStats();
      for (int i = 0; i < w.length; i++) {
        stats.add(before[i], w[i]);
      }
      TensorProto pruned = OnnxTensors.withFloats(original, w);
      g.setInitializer(at, pruned);
      long bytes = pruned.getRawData().size();
      reports.add(new TensorReport(info.name(), info.shape(), w.length, bytes, bytes,
          stats.sparsityBefore(), stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), null, null));
    }
    run.at(n, n, "N:M pruned " + n + " tensors");
    return reports;
  }

  /** The N:M reduction axis of each initializer, from its first consumer that has one. */
  static Map<String, Integer> reductionAxes(GraphProto graph) {
    Map<String, Integer> rank = new HashMap<>();
    graph.getInitializerList().forEach(t -> rank.put(t.getName(), t.getDimsCount()));
    Map<String, Integer> axes = new HashMap<>();
    for (NodeProto node : graph.getNodeList()) {
      for (int i = 0; i < node.getInputCount(); i++) {
        String name = node.getInput(i);
        Integer r = rank.get(name);
        if (r == null || axes.containsKey(name)) {
          continue;
        }
        boolean transposed = node.getOpType().equals("Gemm") && intAttr(node, i == 1 ? "transB" : "transA") == 1;
        Integer axis = NmPruner.reductionAxis(node.getOpType() + ":" + i, r, transposed);
        if (axis != null) {
          axes.put(name, axis);
        }
      }
    }
    return axes;
  }

  static String nmSummary(PruneSpec spec, List<TensorReport> tensors) {
    long params = 0;
    double zeros = 0;
    for (TensorReport t : tensors) {
      params += t.parameters();
      zeros += t.sparsityAfter() * t.parameters();
    }
    return String.format(Locale.ROOT, "%d:%d semi-structured pruning of %d tensors: %d of %d weights are now zero (%.2f%%)",
        spec.n(), spec.m(), tensors.size(), Math.round(zeros), params, params == 0 ? 0 : 100 * zeros / params);
  }

  // ---- structured ---------------------------------------------------------------------------

  /** The smaller model and what the step reports. */
  record Structured(ModelProto model, String summary, List<TensorReport> tensors, Map<String, Object> details) {}

  static Structured structured(ModelProto model, List<TensorInfo> selected, PruneSpec spec, ItemProgress run) {
    return structured(model, selected, spec, null, run);
  }

  /** Structured pruning; {@code ctx} gives the calibration data the activation criterion needs. */
  static Structured structured(ModelProto model, List<TensorInfo> selected, PruneSpec spec, PipelineContext ctx,
      ItemProgress run) {
    if (spec.target() == PruneSpec.Target.HEADS) {
      return HeadPruner.prune(model, selected, spec, run);
    }
    Set<String> weights = new HashSet<>();
    selected.forEach(t -> weights.add(t.name()));
    long paramsBefore = OnnxModels.summarize(model).parameterCount();
    StructuredPruner.ChannelChoice choice = StructuredPruner.byNorm(spec);
    Map<String, double[]> activations = null;
    if (spec.criterion() == PruneSpec.Criterion.ACTIVATION) {
      ChannelActivations.requireCalibration(ctx, "structured pruning by activation");
      List<ChannelActivations.Probe> probes = new ArrayList<>();
      for (NodeProto n : model.getGraph().getNodeList()) {
        if (StructuredPruner.isCandidate(n, spec.target()) && n.getInputCount() > 1 && weights.contains(n.getInput(1))) {
          probes.add(ChannelActivations.probe(model.getGraph(), n.getInput(1)));
        }
      }
      Map<String, double[]> measured = ChannelActivations.meanAbs(model, probes, ctx,
          "structured pruning by activation", run);
      activations = measured;
      choice = (weight, values, dims, outAxis, count) -> {
        double[] scores = measured.get(weight);
        if (scores == null || scores.length != count) {
          throw new StructuredPruner.Refusal("its activations were not measured on " + count + " channels");
        }
        return StructuredPruner.lowest(scores, spec.sparsity());
      };
    }
    StructuredPruner.Outcome out = StructuredPruner.prune(model.getGraph(), spec, weights, !spec.include().isEmpty(),
        choice, (item, items) -> run.at(item, items, "removing channels"));
    ModelProto result = model.toBuilder().setGraph(out.graph()).build();
    long paramsAfter = OnnxModels.summarize(result).parameterCount();
    List<Map<String, Object>> layers = new ArrayList<>();
    for (StructuredPruner.Layer l : out.layers()) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("node", l.node());
      m.put("op", l.op());
      m.put("weight", l.weight());
      m.put("channelsBefore", l.channelsBefore());
      m.put("channelsAfter", l.channelsAfter());
      m.put("parametersBefore", l.parametersBefore());
      m.put("parametersAfter", l.parametersAfter());
      m.put("tensorsChanged", l.tensorsChanged());
      layers.add(m);
    }
    Map<String, Object> details = new LinkedHashMap<>();
    details.put("criterion", spec.criterion().name().toLowerCase(Locale.ROOT));
    details.put("target", spec.target().name().toLowerCase(Locale.ROOT));
    details.put("modelParametersBefore", paramsBefore);
    details.put("modelParametersAfter", paramsAfter);
    details.put("layers", layers);
    details.put("skipped", out.skipped());
    if (activations != null) {
      // The score of every channel, so a client can see what was removed and why.
      details.put("meanAbsActivation", activations);
    }
    String summary = String.format(Locale.ROOT,
        "structured pruning (%s) removed %.0f%% of the output channels of %d layers%s: model parameters %d -> %d (%.1f%%)",
        spec.criterion() == PruneSpec.Criterion.ACTIVATION ? "mean |activation| on calibration data"
            : spec.criterion().name() + " norm", 100 * spec.sparsity(), out.layers().size(),
        out.skipped().isEmpty() ? "" : " (" + out.skipped().size() + " skipped, see details)",
        paramsBefore, paramsAfter, 100.0 * paramsAfter / Math.max(1, paramsBefore));
    return new Structured(result, summary, out.tensors(), details);
  }

  // ---- weight sharing -----------------------------------------------------------------------

  /** What a share step reports. */
  record Shared(String summary, List<TensorReport> tensors, Map<String, Object> details) {}

  static Shared share(GraphProto.Builder g, List<TensorInfo> selected, ShareSpec spec, ItemProgress run) {
    Map<String, Integer> index = new HashMap<>();
    for (int i = 0; i < g.getInitializerCount(); i++) {
      index.put(g.getInitializer(i).getName(), i);
    }
    List<TensorReport> reports = new ArrayList<>();
    Map<String, Object> codebooks = new LinkedHashMap<>();
    int n = selected.size();
    long params = 0;
    for (int j = 0; j < n; j++) {
      TensorInfo info = selected.get(j);
      run.at(j, n, "clustering " + info.name());
      int at = index.get(info.name());
      TensorProto original = g.getInitializer(at);
      float[] w = OnnxTensors.toFloats(original);
      MagnitudePruner.requireFinite(info.name(), w);
      float[] before = w.clone();
      WeightSharing.Result r = WeightSharing.share(w, spec.clusters(), spec.iterations());
      ErrorStats stats = new ErrorStats();
      for (int i = 0; i < w.length; i++) {
        stats.add(before[i], w[i]);
      }
      TensorProto shared = OnnxTensors.withFloats(original, w);
      g.setInitializer(at, shared);
      long bytes = shared.getRawData().size();
      int bits = r.centroids().length <= 1 ? 1 : 32 - Integer.numberOfLeadingZeros(r.centroids().length - 1);
      params += w.length;
      reports.add(new TensorReport(info.name(), info.shape(), w.length, bytes, bytes,
          stats.sparsityBefore(), stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), bits, null));
      codebooks.put(info.name(), Map.of("centroids", r.centroids().length, "iterations", r.iterations()));
    }
    run.at(n, n, "shared " + n + " tensors");
    Map<String, Object> details = new LinkedHashMap<>();
    details.put("clusters", spec.clusters());
    details.put("codebooks", codebooks);
    String summary = String.format(Locale.ROOT,
        "weight sharing (k-means, %d clusters, linear init) of %d tensors, %d weights: each holds at most %d distinct "
            + "non-zero values", spec.clusters(), n, params, spec.clusters());
    return new Shared(summary, reports, details);
  }

  private static long intAttr(NodeProto node, String name) {
    for (AttributeProto a : node.getAttributeList()) {
      if (a.getName().equals(name)) {
        return a.getI();
      }
    }
    return 0;
  }
}
