package dev.modelpress.compression;

import dev.modelpress.evaluation.ActivationCollector;
import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.evaluation.WeightProbe;
import dev.modelpress.compression.quantize.LinearQuantizer;
import dev.modelpress.compression.quantize.QuantLayout;
import dev.modelpress.compression.quantize.QuantScheme;
import dev.modelpress.compression.quantize.WeightAxes;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Runs a {@link CalibratedQuantizeSpec}: static activation quantization, GPTQ, sensitivity
 * analysis and mixed precision, each driven by ONNX Runtime runs of the current model on the
 * calibration samples.
 *
 * <p>Memory: activations are streamed one batch at a time; GPTQ keeps one K×K float Hessian per
 * distinct layer input (processed in passes of at most {@link #HESSIAN_BUDGET_BYTES}); sensitivity
 * and mixed precision keep the quantized codes of the selected weights (one byte per weight per
 * precision), and a trial decodes them into one float copy that the probe session reads.
 */
final class CalibratedQuantization {

  /** Hessians accumulated in one calibration pass at most. */
  static final long HESSIAN_BUDGET_BYTES = 256L << 20;

  /** Samples a sensitivity or mixed-precision trial runs at most. */
  static final int PROBE_SAMPLES = 32;

  /** Reports progress within the step and is the cancellation point. */
  @FunctionalInterface
  interface Items {
    void at(int item, int items, String message);
  }

  record Outcome(ModelProto model, List<TensorReport> tensors, CalibrationReport report, String summary) {}

  private CalibratedQuantization() {}

  static Outcome apply(ModelProto model, List<TensorInfo> selected, CalibratedQuantizeSpec spec, PipelineContext ctx,
      Items items) {
    if (ctx == null || !ctx.hasCalibration()) {
      throw new CompressionException(describe(spec) + " needs calibration data: give the job a calibrationDatasetId");
    }
    try {
      return spec.activations() != null
          ? staticQuantization(model, selected, spec, ctx, items)
          : weightOnly(model, selected, spec, ctx, items);
    } catch (EvaluationException e) {
      throw new CompressionException(e.getMessage());
    }
  }

  static String describe(CalibratedQuantizeSpec spec) {
    if (spec.activations() != null) {
      return "static quantization";
    }
    if (spec.target() != null) {
      return "mixed precision";
    }
    return spec.method() == CalibratedQuantizeSpec.Method.GPTQ ? "GPTQ" : "sensitivity analysis";
  }

  // ---- static activation quantization ---------------------------------------------------

  private static Outcome staticQuantization(ModelProto model, List<TensorInfo> selected, CalibratedQuantizeSpec spec,
      PipelineContext ctx, Items items) throws EvaluationException {
    if (OnnxModels.defaultOpset(model) < 10) {
      throw new CompressionException("static quantization needs ai.onnx opset 10 or later (QuantizeLinear); "
          + "the model imports opset " + OnnxModels.defaultOpset(model));
    }
    CalibratedQuantizeSpec.Activations act = spec.activations();
    Set<String> names = new LinkedHashSet<>();
    selected.forEach(t -> names.add(t.name()));
    StaticQuantizer.Plan plan = StaticQuantizer.plan(model.getGraph(), names);
    List<String> skipped = new ArrayList<>(plan.skipped());
    Map<String, ActivationObserver> observers = new LinkedHashMap<>();
    int samples;
    try (ActivationCollector collector = ActivationCollector.open(model, plan.tensors(), ctx.workDir(),
        ctx.intraOpThreads())) {
      collector.elementTypes().forEach((tensor, type) -> {
        if (collector.floatTensors().contains(tensor)) {
          observers.put(tensor, new ActivationObserver());
        } else {
          skipped.add("'" + tensor + "' is " + type + ", not floating point");
        }
      });
      int batches = (Math.min(ctx.maxCalibrationSamples(), sampleCount(ctx)) + ctx.batchSize() - 1) / ctx.batchSize();
      samples = collector.run(ctx.calibration(), ctx.batchSize(), ctx.maxCalibrationSamples(), (batch, n, values) -> {
        items.at(batch, batches + 1, "calibrating activations, batch " + (batch + 1) + " of " + batches);
        values.forEach((tensor, a) -> observers.get(tensor).add(a.values()));
      });
    }
    Map<String, StaticQuantizer.Params> params = new LinkedHashMap<>();
    List<CalibrationReport.ActivationRange> ranges = new ArrayList<>();
    double percentile = act.percentile();
    Set<String> probabilities = StaticQuantizer.probabilityOutputs(model.getGraph());
    observers.forEach((tensor, o) -> {
      // A probability's range is [0, 1] by definition; a calibrator would only clip its rare large
      // values, which are the ones attention depends on.
      double[] range = probabilities.contains(tensor) ? new double[] {0, 1} : o.range(act.calibrator(), percentile);
      StaticQuantizer.Params p = StaticQuantizer.params(range[0], range[1], act.symmetric());
      params.put(tensor, p);
      ranges.add(new CalibrationReport.ActivationRange(tensor, o.min(), o.max(), range[0], range[1], p.scale(),
          p.zeroPoint()));
    });

    Map<String, Integer> axes = OnnxPipeline.channelAxes(model.getGraph());
    boolean perChannel = spec.weights().granularity() == QuantizeSpec.Granularity.CHANNEL;
    Map<String, WeightQuantizer.Quantized> quantized = new LinkedHashMap<>();
    List<TensorReport> reports = new ArrayList<>();
    Map<String, TensorProto> initializers = initializers(model.getGraph());
    for (TensorInfo info : selected) {
      float[] w = OnnxTensors.toFloats(initializers.get(info.name()));
      MagnitudePruner.requireFinite(info.name(), w);
      long[] shape = shape(info);
      ErrorStats stats = new ErrorStats();
      quantized.put(info.name(), WeightQuantizer.quantize(w, shape, perChannel ? axes.getOrDefault(info.name(), 0) : -1,
          spec.weights().symmetric(), stats));
      reports.add(report(info, stats, 8, spec.weights().granularity()));
    }
    Rewritten rewritten = rewriteWeights(model, quantized);
    fillBytes(reports, rewritten.bytes());
    GraphProto graph = StaticQuantizer.insert(rewritten.model().getGraph(), plan, params, act.symmetric());
    ModelProto out = rewritten.model().toBuilder().setGraph(graph).build();
    items.at(1, 1, "inserted " + params.size() + " activation QDQ pairs");
    CalibrationReport report = new CalibrationReport("static", samples, ranges, skipped, null, null, null);
    String summary = String.format(Locale.ROOT,
        "static int8 quantization: %d activations (%s %s, calibrator %s) and %d weights (per %s), %d calibration samples",
        params.size(), act.symmetric() ? "int8" : "uint8", act.symmetric() ? "symmetric" : "asymmetric",
        act.calibrator().name().toLowerCase(Locale.ROOT), reports.size(),
        spec.weights().granularity().name().toLowerCase(Locale.ROOT), samples);
    return new Outcome(out, reports, report, summary);
  }

  // ---- weight-only: GPTQ, sensitivity, mixed precision ---------------------------------------

  private static Outcome weightOnly(ModelProto model, List<TensorInfo> selected, CalibratedQuantizeSpec spec,
      PipelineContext ctx, Items items) throws EvaluationException {
    QuantizeSpec w = spec.weights();
    if (w.granularity() == QuantizeSpec.Granularity.GROUP) {
      return groupedGptq(model, selected, spec, ctx, items);
    }
    IntegerGrid grid = new IntegerGrid(w.bits(), w.symmetric());
    boolean perChannel = w.granularity() == QuantizeSpec.Granularity.CHANNEL;
    Map<String, Integer> axes = OnnxPipeline.channelAxes(model.getGraph());
    Map<String, TensorProto> initializers = initializers(model.getGraph());
    int n = selected.size();

    Map<String, WeightQuantizer.Quantized> low = new LinkedHashMap<>();
    List<CalibrationReport.LayerError> layers = new ArrayList<>();
    int samples = Math.min(ctx.maxCalibrationSamples(), sampleCount(ctx));
    if (spec.method() == CalibratedQuantizeSpec.Method.GPTQ) {
      samples = gptq(model, selected, grid, perChannel, ctx, initializers, low, layers, items);
    }
    for (TensorInfo info : selected) {
      if (!low.containsKey(info.name())) {
        float[] values = OnnxTensors.toFloats(initializers.get(info.name()));
        MagnitudePruner.requireFinite(info.name(), values);
        low.put(info.name(), grid.roundToNearest(values, shape(info), perChannel ? axes.getOrDefault(info.name(), 0) : -1));
      }
    }

    List<CalibrationReport.Sensitivity> sensitivity = null;
    CalibrationReport.MixedPrecision mixed = null;
    Map<String, WeightQuantizer.Quantized> chosen = new LinkedHashMap<>(low);
    Map<String, Integer> bits = new HashMap<>();
    selected.forEach(t -> bits.put(t.name(), w.bits()));
    if (spec.sensitivity()) {
      List<String> names = selected.stream().map(TensorInfo::name).toList();
      Map<String, long[]> shapes = new HashMap<>();
      selected.forEach(t -> shapes.put(t.name(), shape(t)));
      int probeSamples = Math.min(PROBE_SAMPLES, ctx.maxCalibrationSamples());
      try (WeightProbe probe = WeightProbe.open(model, names, ctx.calibration(), ctx.batchSize(), probeSamples,
          ctx.workDir(), ctx.intraOpThreads())) {
        sensitivity = new ArrayList<>();
        for (int j = 0; j < n; j++) {
          String name = names.get(j);
          items.at(j, 2 * n, "sensitivity of " + name);
          WeightProbe.Fidelity f = probe.measure(Map.of(name, IntegerGrid.dequantize(low.get(name), shapes.get(name))));
          sensitivity.add(new CalibrationReport.Sensitivity(name, 1 - f.meanCosine(), f.mse()));
        }
        sensitivity.sort(Comparator.comparingDouble(CalibrationReport.Sensitivity::error).reversed());
        if (spec.target() != null) {
          MixedPrecisionSearch.Decision d = MixedPrecisionSearch.search(probe, sensitivity, spec.target(), low,
              highPrecision(spec.target(), selected, initializers, axes), shapes,
              (trial, message) -> items.at(n + Math.min(trial, n - 1), 2 * n, message));
          for (String kept : d.kept()) {
            WeightQuantizer.Quantized high = d.high().get(kept);
            if (high == null) {
              chosen.remove(kept);
            } else {
              chosen.put(kept, high);
            }
            bits.put(kept, spec.target().higherBits());
          }
          mixed = new CalibrationReport.MixedPrecision(spec.target().metric().name().toLowerCase(Locale.ROOT),
              spec.target().threshold(), w.bits(), spec.target().higherBits(), d.uniform(), d.achieved(), d.kept(),
              d.trials());
        }
        samples = Math.max(samples, probe.samples());
      }
    }

    List<TensorReport> reports = new ArrayList<>();
    for (TensorInfo info : selected) {
      WeightQuantizer.Quantized q = chosen.get(info.name());
      ErrorStats stats = new ErrorStats();
      float[] original = OnnxTensors.toFloats(initializers.get(info.name()));
      float[] decoded = q == null ? original : IntegerGrid.dequantize(q, shape(info));
      for (int i = 0; i < original.length; i++) {
        stats.add(original[i], decoded[i]);
      }
      reports.add(report(info, stats, bits.get(info.name()), w.granularity()));
    }
    Rewritten rewritten = rewriteWeights(model, chosen);
    fillBytes(reports, rewritten.bytes());
    items.at(1, 1, "quantized " + n + " tensors");
    String method = spec.method().name().toLowerCase(Locale.ROOT);
    CalibrationReport report = new CalibrationReport(method, samples, null, null, layers, sensitivity, mixed);
    return new Outcome(rewritten.model(), reports, report, summary(spec, n, layers, mixed));
  }

  /**
   * GPTQ in groups along the reduction axis ({@link Gptq#quantizeGroups}), written by the weight-only
   * encoder: packed int4/uint4, MatMulNBits or blocked DequantizeLinear as {@code format} and the
   * opset choose, exactly like round-to-nearest of the same spec. Selected tensors GPTQ cannot take
   * (Gather tables, Conv kernels, weights used in more than one layout) are rounded to nearest on
   * the same grid.
   */
  private static Outcome groupedGptq(ModelProto model, List<TensorInfo> selected, CalibratedQuantizeSpec spec,
      PipelineContext ctx, Items items) throws EvaluationException {
    QuantizeSpec w = spec.weights();
    QuantScheme scheme = WeightOnlyQuantization.scheme(w);
    boolean mse = w.range() == QuantizeSpec.RangeMethod.MSE;
    WeightAxes axes = WeightAxes.of(model.getGraph());
    Map<String, TensorInfo> byName = new HashMap<>();
    selected.forEach(t -> byName.put(t.name(), t));
    Map<String, LinearQuantizer.Result> codes = new HashMap<>();
    Map<String, QuantLayout> layouts = new HashMap<>();
    List<CalibrationReport.LayerError> layers = new ArrayList<>();
    int samples = hessianPasses(model, selected, ctx, initializers(model.getGraph()), layers, items,
        (name, values, layer, h) -> {
          long[] dims = shape(byName.get(name));
          QuantLayout layout = QuantLayout.perGroup(dims, axes.of(name, dims.length).reduction(), w.groupSize());
          if (layout.axis() != (layer.transposed() ? 1 : 0)) {
            return null;
          }
          Gptq.GroupResult r = Gptq.quantizeGroups(values, layer.k(), layer.n(), layer.transposed(), h, scheme, layout,
              mse, Gptq.DEFAULT_BLOCK, Gptq.DEFAULT_DAMPENING);
          codes.put(name, r.quantized());
          layouts.put(name, layout);
          return new CalibrationReport.LayerError(name, r.roundToNearestError(), r.gptqError());
        });
    List<TensorReport> reports = new ArrayList<>();
    ModelProto out = WeightOnlyQuantization.apply(model, selected, w, items::at, reports, (info, values, layout, s) -> {
      LinearQuantizer.Result r = codes.remove(info.name());
      return r != null && layout.equals(layouts.get(info.name())) ? r : LinearQuantizer.quantize(values, layout, s, mse);
    });
    CalibrationReport report = new CalibrationReport("gptq", samples, null, null, layers, null, null);
    double rtn = layers.stream().mapToDouble(CalibrationReport.LayerError::roundToNearest).average().orElse(0);
    double gptq = layers.stream().mapToDouble(CalibrationReport.LayerError::gptq).average().orElse(0);
    String summary = String.format(Locale.ROOT, "GPTQ of %d layers (mean relative layer error %.3g, round-to-nearest "
        + "%.3g), %d samples; %s", layers.size(), gptq, rtn, samples, WeightOnlyQuantization.summary(w, reports));
    return new Outcome(out, reports, report, summary);
  }

  private static String summary(CalibratedQuantizeSpec spec, int n, List<CalibrationReport.LayerError> layers,
      CalibrationReport.MixedPrecision mixed) {
    StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "%d-bit %s weight quantization (%s, per %s) of %d tensors",
        spec.weights().bits(), spec.method() == CalibratedQuantizeSpec.Method.GPTQ ? "GPTQ" : "round-to-nearest",
        spec.weights().symmetric() ? "symmetric" : "asymmetric",
        spec.weights().granularity().name().toLowerCase(Locale.ROOT), n));
    if (!layers.isEmpty()) {
      double rtn = layers.stream().mapToDouble(CalibrationReport.LayerError::roundToNearest).average().orElse(0);
      double gptq = layers.stream().mapToDouble(CalibrationReport.LayerError::gptq).average().orElse(0);
      s.append(String.format(Locale.ROOT, "; mean relative layer error %.3g (round-to-nearest %.3g)", gptq, rtn));
    }
    if (mixed != null) {
      s.append(String.format(Locale.ROOT, "; mixed precision kept %d tensors at %s to reach %s %s %.6g (uniform %.6g, achieved %.6g)",
          mixed.kept().size(), mixed.higherBits() == 32 ? "float" : mixed.higherBits() + " bits", mixed.metric(),
          mixed.metric().equals("cosine") ? ">=" : "<=", mixed.target(), mixed.uniform(), mixed.achieved()));
    }
    return s.toString();
  }

  private static Map<String, WeightQuantizer.Quantized> highPrecision(CalibratedQuantizeSpec.FidelityTarget target,
      List<TensorInfo> selected, Map<String, TensorProto> initializers, Map<String, Integer> axes) {
    Map<String, WeightQuantizer.Quantized> high = new HashMap<>();
    if (target.higherBits() == 32) {
      return high;
    }
    IntegerGrid grid = new IntegerGrid(target.higherBits(), true);
    for (TensorInfo info : selected) {
      high.put(info.name(), grid.roundToNearest(OnnxTensors.toFloats(initializers.get(info.name())), shape(info),
          axes.getOrDefault(info.name(), 0)));
    }
    return high;
  }

  /** GPTQ for every selected MatMul/Gemm weight; other tensors are left for round-to-nearest. */
  private static int gptq(ModelProto model, List<TensorInfo> selected, IntegerGrid grid, boolean perChannel,
      PipelineContext ctx, Map<String, TensorProto> initializers, Map<String, WeightQuantizer.Quantized> out,
      List<CalibrationReport.LayerError> layers, Items items) throws EvaluationException {
    return hessianPasses(model, selected, ctx, initializers, layers, items, (name, w, layer, h) -> {
      Gptq.Result r = Gptq.quantize(w, layer.k(), layer.n(), layer.transposed(), h, grid, perChannel,
          Gptq.DEFAULT_BLOCK, Gptq.DEFAULT_DAMPENING);
      out.put(name, r.quantized());
      return new CalibrationReport.LayerError(name, r.roundToNearestError(), r.gptqError());
    });
  }

  /** Quantizes one linear layer's weight given its input Hessian; returns its layer errors. */
  @FunctionalInterface
  interface LayerQuantizer {
    CalibrationReport.LayerError quantize(String name, float[] w, Layer layer, Gptq.Hessian hessian);
  }

  /**
   * Accumulates the input Hessian of every selected MatMul/Gemm weight over the calibration data, in
   * passes bounded by {@link #HESSIAN_BUDGET_BYTES}, and hands each weight with its Hessian to
   * {@code quantizer}; returns the calibration samples used.
   */
  private static int hessianPasses(ModelProto model, List<TensorInfo> selected, PipelineContext ctx,
      Map<String, TensorProto> initializers, List<CalibrationReport.LayerError> layers, Items items,
      LayerQuantizer quantizer) throws EvaluationException {
    Set<String> quantized = new java.util.HashSet<>();
    Map<String, Layer> eligible = linearLayers(model.getGraph(), selected);
    List<String> inputs = new ArrayList<>(new LinkedHashSet<>(
        eligible.values().stream().flatMap(l -> l.inputs().stream()).toList()));
    int samples = 0;
    int done = 0;
    int total = eligible.size();
    // Passes over the calibration data, each accumulating as many Hessians as the budget allows.
    int from = 0;
    while (from < inputs.size()) {
      List<String> pass = new ArrayList<>();
      long bytes = 0;
      while (from < inputs.size()) {
        String input = inputs.get(from);
        int width = widthOf(eligible, input);
        long need = 4L * width * width;
        if (!pass.isEmpty() && bytes + need > HESSIAN_BUDGET_BYTES) {
          break;
        }
        pass.add(input);
        bytes += need;
        from++;
      }
      Map<String, Gptq.Hessian> hessians = new LinkedHashMap<>();
      try {
        for (String input : pass) {
          hessians.put(input, new Gptq.Hessian(widthOf(eligible, input)));
        }
        final int doneSoFar = done;
        try (ActivationCollector collector = ActivationCollector.open(model, pass, ctx.workDir(), ctx.intraOpThreads())) {
          samples = collector.run(ctx.calibration(), ctx.batchSize(), ctx.maxCalibrationSamples(), (batch, n, values) -> {
            items.at(doneSoFar, total + 1, "collecting layer inputs, batch " + (batch + 1));
            values.forEach((tensor, a) -> {
              Gptq.Hessian h = hessians.get(tensor);
              if (a.rowWidth() != h.width) {
                throw new CompressionException("GPTQ: layer input '" + tensor + "' has width " + a.rowWidth()
                    + " but its weight expects " + h.width);
              }
              h.add(a.values());
            });
          });
        }
        for (var e : eligible.entrySet()) {
          Layer layer = e.getValue();
          if (!pass.containsAll(layer.inputs()) || !quantized.add(e.getKey())) {
            continue;
          }
          items.at(done++, total + 1, "GPTQ " + e.getKey());
          float[] w = OnnxTensors.toFloats(initializers.get(e.getKey()));
          MagnitudePruner.requireFinite(e.getKey(), w);
          try (Gptq.Hessian h = new Gptq.Hessian(layer.k())) {
            layer.inputs().forEach(in -> h.add(hessians.get(in)));
            CalibrationReport.LayerError error = quantizer.quantize(e.getKey(), w, layer, h);
            if (error != null) {
              layers.add(error);
            }
          }
        }
      } finally {
        hessians.values().forEach(Gptq.Hessian::close);
      }
    }
    return samples;
  }

  /** A weight GPTQ can handle: y = x·W ([K, N]) or Gemm with W transposed ([N, K]), fed by {@code inputs}. */
  record Layer(int k, int n, boolean transposed, List<String> inputs) {}

  static Map<String, Layer> linearLayers(GraphProto graph, List<TensorInfo> selected) {
    Map<String, TensorInfo> byName = new HashMap<>();
    selected.forEach(t -> byName.put(t.name(), t));
    Map<String, Layer> layers = new LinkedHashMap<>();
    Set<String> ineligible = new java.util.HashSet<>();
    for (NodeProto node : graph.getNodeList()) {
      for (int i = 0; i < node.getInputCount(); i++) {
        TensorInfo t = byName.get(node.getInput(i));
        if (t == null) {
          continue;
        }
        Layer layer = null;
        if (t.shape().size() == 2 && i == 1 && node.getInputCount() >= 2) {
          boolean gemm = node.getOpType().equals("Gemm");
          boolean transA = gemm && intAttribute(node, "transA") == 1;
          if (node.getOpType().equals("MatMul") || (gemm && !transA)) {
            boolean transposed = gemm && intAttribute(node, "transB") == 1;
            int k = Math.toIntExact(t.shape().get(transposed ? 1 : 0));
            int n = Math.toIntExact(t.shape().get(transposed ? 0 : 1));
            layer = new Layer(k, n, transposed, List.of(node.getInput(0)));
          }
        }
        Layer earlier = layers.get(t.name());
        if (layer == null || (earlier != null && (earlier.transposed() != layer.transposed()))) {
          ineligible.add(t.name());
        } else if (earlier != null) {
          List<String> inputs = new ArrayList<>(earlier.inputs());
          if (!inputs.contains(layer.inputs().getFirst())) {
            inputs.add(layer.inputs().getFirst());
          }
          layers.put(t.name(), new Layer(earlier.k(), earlier.n(), earlier.transposed(), inputs));
        } else {
          layers.put(t.name(), layer);
        }
      }
    }
    ineligible.forEach(layers::remove);
    return layers;
  }

  private static int widthOf(Map<String, Layer> layers, String input) {
    for (Layer l : layers.values()) {
      if (l.inputs().contains(input)) {
        return l.k();
      }
    }
    throw new IllegalStateException(input);
  }

  private static long intAttribute(NodeProto node, String name) {
    return node.getAttributeList().stream().filter(a -> a.getName().equals(name)).mapToLong(a -> a.getI())
        .findFirst().orElse(0);
  }

  // ---- shared -------------------------------------------------------------------------

  record Rewritten(ModelProto model, Map<String, Long> bytes) {}

  /** Replaces each quantized initializer by codes + scale + zero point decoded by standard ONNX operators. */
  static Rewritten rewriteWeights(ModelProto model, Map<String, WeightQuantizer.Quantized> quantized) {
    GraphProto graph = model.getGraph();
    QdqWriter writer = new QdqWriter(graph, OnnxModels.defaultOpset(model));
    Map<String, List<TensorProto>> replacements = new HashMap<>();
    Map<String, Long> bytes = new HashMap<>();
    List<NodeProto> decoders = new ArrayList<>();
    for (TensorProto t : graph.getInitializerList()) {
      WeightQuantizer.Quantized q = quantized.get(t.getName());
      if (q != null) {
        QdqWriter.Emitted e = writer.emit(t, q);
        replacements.put(t.getName(), e.initializers());
        decoders.addAll(e.nodes());
        bytes.put(t.getName(), e.bytes());
      }
    }
    GraphProto.Builder g = graph.toBuilder().clearInitializer().clearNode().clearInput();
    for (TensorProto t : graph.getInitializerList()) {
      List<TensorProto> r = replacements.get(t.getName());
      if (r == null) {
        g.addInitializer(t);
      } else {
        g.addAllInitializer(r);
      }
    }
    // Decoders read only initializers: first in the node list keeps the graph sorted.
    g.addAllNode(decoders).addAllNode(graph.getNodeList());
    for (ValueInfoProto v : graph.getInputList()) {
      if (!replacements.containsKey(v.getName())) {
        g.addInput(v);
      }
    }
    return new Rewritten(model.toBuilder().setGraph(g).build(), bytes);
  }

  private static void fillBytes(List<TensorReport> reports, Map<String, Long> bytes) {
    for (int i = 0; i < reports.size(); i++) {
      TensorReport r = reports.get(i);
      long after = bytes.getOrDefault(r.name(), r.bytesBefore());
      reports.set(i, new TensorReport(r.name(), r.shape(), r.parameters(), r.bytesBefore(), after, r.sparsityBefore(),
          r.sparsityAfter(), r.mse(), r.sqnrDb(), r.bits(), r.granularity()));
    }
  }

  private static TensorReport report(TensorInfo info, ErrorStats stats, int bits, QuantizeSpec.Granularity granularity) {
    long params = info.elementCount();
    return new TensorReport(info.name(), info.shape(), params, 4L * params, 4L * params, stats.sparsityBefore(),
        stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), bits, granularity.name());
  }

  private static Map<String, TensorProto> initializers(GraphProto graph) {
    Map<String, TensorProto> map = new HashMap<>();
    graph.getInitializerList().forEach(t -> map.put(t.getName(), t));
    return map;
  }

  static long[] shape(TensorInfo info) {
    return info.shape().stream().mapToLong(Long::longValue).toArray();
  }

  private static int sampleCount(PipelineContext ctx) {
    return ctx.calibration().stream().filter(a -> a.shape().length > 0).mapToInt(a -> (int) a.shape()[0]).findFirst()
        .orElse(0);
  }
}
