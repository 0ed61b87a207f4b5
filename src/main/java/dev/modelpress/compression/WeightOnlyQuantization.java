package dev.modelpress.compression;

import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.compression.quantize.LinearQuantizer;
import dev.modelpress.compression.quantize.QuantLayout;
import dev.modelpress.compression.quantize.QuantScheme;
import dev.modelpress.compression.quantize.RangeRefiner;
import dev.modelpress.compression.quantize.WeightAxes;
import dev.modelpress.compression.quantize.WeightEncoder;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.OperatorSetIdProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * The weight-only quantize step: each selected initializer, one at a time, is quantized by {@link
 * LinearQuantizer} (or cast to fp16/bf16) and written by {@link WeightEncoder} in the encoding the
 * spec and the model's opset allow; the graph is rebuilt once at the end.
 */
final class WeightOnlyQuantization {

  /**
   * Whether {@code format: auto} sends 4-bit group MatMul weights to MatMulNBits even where opset
   * 21's DequantizeLinear could hold them. No: in {@code OrtMatMulBenchmark} the standard
   * DequantizeLinear-21 form ran a MiniLM-sized block at one token 4× faster than MatMulNBits (ONNX
   * Runtime fuses it into its own 4-bit kernel) and at 128 tokens neither won consistently
   * (docs/quantization.md); so below opset 21 auto uses MatMulNBits, from 21 the standard form.
   */
  static final boolean AUTO_PREFERS_MATMULNBITS = false;

  /** Progress callback of the pipeline. */
  @FunctionalInterface
  interface Tick {
    void at(int item, int items, String message);
  }

  /**
   * How a tensor's codes are chosen on its grid and layout: round-to-nearest by default; GPTQ
   * supplies its own codes through the same encoder ({@link CalibratedQuantization}).
   */
  @FunctionalInterface
  interface Rounding {
    LinearQuantizer.Result round(TensorInfo info, float[] w, QuantLayout layout, QuantScheme scheme);
  }

  private WeightOnlyQuantization() {}

  /** The grid a spec asks for. */
  static QuantScheme scheme(QuantizeSpec spec) {
    if (spec.scheme() == QuantizeSpec.Scheme.TERNARY) {
      return QuantScheme.ternary();
    }
    if (spec.bits() == 1) {
      return QuantScheme.binary();
    }
    return QuantScheme.integer(spec.bits(), spec.signed(), spec.symmetric());
  }

  /**
   * Quantizes the selected tensors wherever they live: main-graph initializers, {@code Constant}
   * values ({@code Constant} nodes are replaced by the codes, scales and a decoder producing the
   * same name) and the initializers and {@code Constant} values of {@code If}/{@code Loop}/{@code
   * Scan} subgraphs (decoded inside the subgraph that holds them, so names keep their scopes).
   *
   * @throws CompressionException a selected tensor cannot be rewritten safely (a subgraph
   *     initializer that is also a subgraph input, two catalogue entries with one name) or was not
   *     found; nothing is skipped silently
   */
  static ModelProto apply(ModelProto model, List<TensorInfo> selected, QuantizeSpec spec, Tick tick,
      List<TensorReport> reports) {
    boolean mse = spec.range() == QuantizeSpec.RangeMethod.MSE;
    RangeRefiner.Method refine = switch (spec.range()) {
      case LSQ -> RangeRefiner.Method.LSQ;
      case HQQ -> RangeRefiner.Method.HQQ;
      case MINMAX, MSE -> null;
    };
    return apply(model, selected, spec, tick, reports, (info, w, layout, scheme) -> refine == null
        ? LinearQuantizer.quantize(w, layout, scheme, mse) : RangeRefiner.quantize(w, layout, scheme, refine));
  }

  /** As {@link #apply(ModelProto, List, QuantizeSpec, Tick, List)}, with the codes chosen by {@code rounding}. */
  static ModelProto apply(ModelProto model, List<TensorInfo> selected, QuantizeSpec spec, Tick tick,
      List<TensorReport> reports, Rounding rounding) {
    Map<String, TensorInfo> wanted = new LinkedHashMap<>();
    for (TensorInfo t : selected) {
      if (wanted.put(t.name(), t) != null) {
        throw new CompressionException("two tensors of the model are catalogued as '" + t.name()
            + "'; rename one of them before quantizing");
      }
    }
    long opset = OnnxModels.defaultOpset(model);
    Rewrite run = new Rewrite(spec, new WeightEncoder(model.getGraph(), opset), opset, wanted, tick, reports,
        rounding);
    GraphProto graph = run.graph(model.getGraph(), "");
    if (!wanted.isEmpty()) {
      throw new CompressionException("tensor '" + wanted.keySet().iterator().next()
          + "' was selected but is not where the model's catalogue places it; it was not quantized");
    }
    int n = selected.size();
    // Subgraphs are rewritten before their parents; report in catalogue order.
    Map<String, Integer> order = new HashMap<>();
    for (int i = 0; i < n; i++) {
      order.put(selected.get(i).name(), i);
    }
    reports.sort(java.util.Comparator.comparingInt(t -> order.getOrDefault(t.name(), n)));
    tick.at(n, n, "quantized " + n + " tensors");
    ModelProto.Builder out = model.toBuilder().setGraph(graph);
    boolean importsMicrosoft = model.getOpsetImportList().stream()
        .anyMatch(o -> o.getDomain().equals(WeightEncoder.MICROSOFT_DOMAIN));
    if (run.usedMatMulNBits && !importsMicrosoft) {
      out.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(WeightEncoder.MICROSOFT_DOMAIN).setVersion(1));
    }
    return out.build();
  }

  /** One pass over the model's graphs, depth first; {@code wanted} loses each tensor as it is done. */
  private static final class Rewrite {
    private final QuantizeSpec spec;
    private final WeightEncoder encoder;
    private final long opset;
    private final Map<String, TensorInfo> wanted;
    private final Tick tick;
    private final List<TensorReport> reports;
    private final int total;
    private final Rounding rounding;
    private boolean usedMatMulNBits;

    Rewrite(QuantizeSpec spec, WeightEncoder encoder, long opset, Map<String, TensorInfo> wanted, Tick tick,
        List<TensorReport> reports, Rounding rounding) {
      this.rounding = rounding;
      this.spec = spec;
      this.encoder = encoder;
      this.opset = opset;
      this.wanted = wanted;
      this.tick = tick;
      this.reports = reports;
      this.total = wanted.size();
    }

    /** The graph with its subgraphs rewritten first, then its own selected weights. */
    GraphProto graph(GraphProto graph, String scope) {
      boolean main = scope.isEmpty();
      String prefix = main ? "" : scope + "/";
      List<NodeProto> nodes = new ArrayList<>(graph.getNodeCount());
      boolean subgraphsChanged = false;
      for (int i = 0; i < graph.getNodeCount(); i++) {
        NodeProto node = subgraphs(graph.getNode(i), i, scope);
        subgraphsChanged |= node != graph.getNode(i);
        nodes.add(node);
      }
      WeightAxes axes = WeightAxes.of(graph);
      Set<String> inputs = new HashSet<>();
      graph.getInputList().forEach(v -> inputs.add(v.getName()));

      Map<String, List<TensorProto>> replacements = new HashMap<>();
      Map<String, UnaryOperator<NodeProto>> rewrites = new HashMap<>();
      List<NodeProto> decoders = new ArrayList<>();
      for (TensorProto t : graph.getInitializerList()) {
        TensorInfo info = wanted.remove(prefix + t.getName());
        if (info == null) {
          continue;
        }
        if (!main && inputs.contains(t.getName())) {
          throw new CompressionException("tensor '" + info.name() + "' is both an initializer and an input of subgraph "
              + scope + " (a default for a positional input); it cannot be replaced by a decoder safely; exclude it");
        }
        WeightEncoder.Emitted e = quantize(info, t.getName(), t, axes);
        if (e != null) {
          record(t.getName(), e, replacements, rewrites, decoders);
        }
      }
      Set<NodeProto> dropped = Collections.newSetFromMap(new IdentityHashMap<>());
      Map<String, List<TensorProto>> constants = new LinkedHashMap<>();
      for (NodeProto node : nodes) {
        TensorProto c = OnnxModels.constantWeight(node);
        TensorInfo info = c == null ? null : wanted.remove(prefix + node.getOutput(0));
        if (info == null) {
          continue;
        }
        WeightEncoder.Emitted e = quantize(info, node.getOutput(0), c, axes);
        if (e != null) {
          record(node.getOutput(0), e, constants, rewrites, decoders);
          dropped.add(node);
        }
      }
      if (replacements.isEmpty() && constants.isEmpty() && !subgraphsChanged) {
        return graph;
      }
      GraphProto.Builder g = graph.toBuilder().clearInitializer().clearNode();
      for (TensorProto t : graph.getInitializerList()) {
        List<TensorProto> r = replacements.get(t.getName());
        if (r == null) {
          g.addInitializer(t);
        } else {
          g.addAllInitializer(r);
        }
      }
      // A Constant's codes and scales become initializers of the graph that held the node.
      constants.values().forEach(g::addAllInitializer);
      // The decoders read only initializers, so placing them first keeps the graph topologically
      // sorted whatever order the original nodes were in.
      g.addAllNode(decoders);
      for (NodeProto node : nodes) {
        if (dropped.contains(node)) {
          continue;
        }
        UnaryOperator<NodeProto> rewrite = node.getOpType().equals("MatMul") && node.getDomain().isEmpty()
            && node.getInputCount() == 2 ? rewrites.get(node.getInput(1)) : null;
        g.addNode(rewrite == null ? node : rewrite.apply(node));
      }
      if (main) {
        g.clearInput();
        for (ValueInfoProto v : graph.getInputList()) {
          // Before IR 4 initializers were also graph inputs; a decoded weight must not be one, or
          // the graph would have two producers for its name.
          if (!replacements.containsKey(v.getName())) {
            g.addInput(v);
          }
        }
      }
      return g.build();
    }

    private NodeProto subgraphs(NodeProto node, int index, String scope) {
      boolean any = false;
      for (AttributeProto a : node.getAttributeList()) {
        any |= a.hasG() || a.getGraphsCount() > 0;
      }
      if (!any) {
        return node;
      }
      NodeProto.Builder b = node.toBuilder().clearAttribute();
      for (AttributeProto a : node.getAttributeList()) {
        if (!a.hasG() && a.getGraphsCount() == 0) {
          b.addAttribute(a);
          continue;
        }
        AttributeProto.Builder ab = a.toBuilder();
        if (a.hasG()) {
          ab.setG(graph(a.getG(), OnnxModels.subgraphScope(scope, node, index, a.getName(), -1)));
        }
        for (int k = 0; k < a.getGraphsCount(); k++) {
          ab.setGraphs(k, graph(a.getGraphs(k), OnnxModels.subgraphScope(scope, node, index, a.getName(), k)));
        }
        b.addAttribute(ab);
      }
      return b.build();
    }

    private void record(String name, WeightEncoder.Emitted e, Map<String, List<TensorProto>> replacements,
        Map<String, UnaryOperator<NodeProto>> rewrites, List<NodeProto> decoders) {
      replacements.put(name, e.initializers());
      decoders.addAll(e.decoders());
      if (e.matMulRewrite() != null) {
        rewrites.put(name, e.matMulRewrite());
        usedMatMulNBits = true;
      }
    }

    /** The weight's encoding, or {@code null} when it stays as it is (already in the cast's type). */
    private WeightEncoder.Emitted quantize(TensorInfo info, String name, TensorProto original, WeightAxes axes) {
      tick.at(reports.size(), total, "quantizing " + info.name());
      long[] dims = info.shape().stream().mapToLong(Long::longValue).toArray();
      if (!spec.isInteger() && original.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
        // Already FLOAT16 (or BFLOAT16) where that was asked for: keep it as it is.
        long bytes = 2 * info.elementCount();
        reports.add(new TensorReport(info.name(), info.shape(), info.elementCount(), bytes, bytes, 0, 0, 0.0, null, 16,
            null, null, spec.dtype().name().toLowerCase(Locale.ROOT), null, null, "unchanged",
            8.0 * bytes / Math.max(1, info.elementCount())));
        return null;
      }
      float[] w = OnnxTensors.toFloats(original);
      MagnitudePruner.requireFinite(info.name(), w);
      ErrorStats stats = new ErrorStats();
      WeightEncoder.Emitted emitted;
      TensorReport report;
      if (!spec.isInteger()) {
        boolean bf16 = spec.dtype() == QuantizeSpec.WeightType.BF16;
        emitted = encoder.cast(name, w, dims, bf16);
        for (float v : w) {
          stats.add(v, bf16 ? WeightEncoder.fromBfloat16(WeightEncoder.toBfloat16(v))
              : Float.float16ToFloat(Float.floatToFloat16(v)));
        }
        report = report(info, w.length, emitted, stats, 16, null, null, spec.dtype().name().toLowerCase(Locale.ROOT),
            null, null);
      } else {
        QuantScheme scheme = scheme(spec);
        QuantLayout layout = layout(info, name, dims, spec, axes);
        LinearQuantizer.Result q = rounding.round(info, w, layout, scheme);
        float[] decoded = LinearQuantizer.dequantize(q, layout, scheme);
        for (int i = 0; i < w.length; i++) {
          stats.add(w[i], decoded[i]);
        }
        // A FLOAT16 weight is quantized from its half values and decoded back to FLOAT16 by a
        // Cast, so the graph's types stay as they were; MatMulNBits (float scales) is not used.
        boolean half = original.getDataType() == TensorProto.DataType.FLOAT16_VALUE;
        emitted = encode(encoder, name, layout, scheme, q, spec, axes, opset, half);
        if (half) {
          emitted = encoder.toHalf(name, emitted);
        }
        String range = scheme.kind() == QuantScheme.Kind.BINARY ? "closed-form" : spec.range().name().toLowerCase(Locale.ROOT);
        report = report(info, w.length, (half ? 2L : 4L) * w.length, emitted, stats, spec.bits(),
            spec.granularity().name(),
            spec.granularity() == Granularity.GROUP ? spec.groupSize() : null, scheme.label(), range,
            Double.isNaN(q.clipRatio()) ? null : q.clipRatio());
      }
      reports.add(report);
      return emitted;
    }
  }

  /** The layout a weight gets: per tensor, per channel on its channel axis, or groups along its reduction axis. */
  static QuantLayout layout(TensorInfo info, String name, long[] dims, QuantizeSpec spec, WeightAxes axes) {
    if (spec.granularity() != Granularity.TENSOR && dims.length == 0) {
      throw new CompressionException("tensor '" + info.name() + "' is a scalar; it has no channel or group axis");
    }
    WeightAxes.Axes a = axes.of(name, dims.length);
    return switch (spec.granularity()) {
      case TENSOR -> QuantLayout.perTensor(dims);
      case CHANNEL -> QuantLayout.perChannel(dims, a.channel());
      case GROUP -> QuantLayout.perGroup(dims, a.reduction(), spec.groupSize());
    };
  }

  private static WeightEncoder.Emitted encode(WeightEncoder encoder, String name, QuantLayout layout,
      QuantScheme scheme, LinearQuantizer.Result q, QuantizeSpec spec, WeightAxes axes, long opset, boolean half) {
    boolean nbits = !half && spec.format() != QuantizeSpec.Format.QDQ && WeightEncoder.matMulNBitsFits(scheme, layout)
        && axes.onlyMatMulWeight(name);
    // DequantizeLinear holds integer zero points only; refined ranges may carry fractional ones.
    boolean dq = q.fractionalZeroPoints() == null && encoder.dequantizeLinearFits(scheme, layout);
    if (nbits && (spec.format() == QuantizeSpec.Format.MATMULNBITS || !dq || AUTO_PREFERS_MATMULNBITS)) {
      return encoder.matMulNBits(name, layout, scheme, q);
    }
    if (dq) {
      return encoder.dequantizeLinear(name, layout, scheme, q);
    }
    long needed = WeightEncoder.unpackMinOpset(scheme);
    if (opset < needed) {
      throw new CompressionException("tensor '" + name + "': " + scheme.label() + " weights need ai.onnx opset "
          + needed + " or later to be unpacked; the model imports opset " + opset);
    }
    return encoder.unpack(name, layout, scheme, q);
  }

  private static TensorReport report(TensorInfo info, int parameters, WeightEncoder.Emitted emitted, ErrorStats stats,
      int bits, String granularity, Integer groupSize, String scheme, String range, Double clipRatio) {
    return report(info, parameters, 4L * parameters, emitted, stats, bits, granularity, groupSize, scheme, range,
        clipRatio);
  }

  private static TensorReport report(TensorInfo info, int parameters, long bytesBefore, WeightEncoder.Emitted emitted,
      ErrorStats stats, int bits, String granularity, Integer groupSize, String scheme, String range,
      Double clipRatio) {
    return new TensorReport(info.name(), info.shape(), parameters, bytesBefore, emitted.bytes(),
        stats.sparsityBefore(), stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), bits, granularity, groupSize,
        scheme, range, clipRatio, emitted.encoding().label(), 8.0 * emitted.bytes() / Math.max(1, parameters));
  }

  /** One sentence: scheme, tensor count, bytes, effective bits per weight and the encodings used. */
  static String summary(QuantizeSpec spec, List<TensorReport> tensors) {
    long before = 0;
    long after = 0;
    long params = 0;
    Map<String, Integer> encodings = new LinkedHashMap<>();
    for (TensorReport t : tensors) {
      before += t.bytesBefore();
      after += t.bytesAfter();
      params += t.parameters();
      encodings.merge(t.encoding(), 1, Integer::sum);
    }
    String what;
    if (!spec.isInteger()) {
      what = spec.dtype().name().toLowerCase(Locale.ROOT) + " weight cast";
    } else {
      String grid = scheme(spec).label();
      String per = switch (spec.granularity()) {
        case TENSOR -> "per tensor";
        case CHANNEL -> "per channel";
        case GROUP -> "per group of " + spec.groupSize();
      };
      what = String.format(Locale.ROOT, "%s weight quantization (%s, %s)", grid,
          spec.symmetric() ? "symmetric" : "asymmetric", per);
    }
    String range = !spec.isInteger() ? "" : ", " + (spec.bits() == 1 && spec.scheme() == QuantizeSpec.Scheme.INTEGER
        ? "closed-form" : spec.range().name().toLowerCase(Locale.ROOT)) + " range";
    StringBuilder enc = new StringBuilder();
    encodings.forEach((k, v) -> enc.append(enc.isEmpty() ? "" : ", ").append(k).append(" ").append(v));
    return String.format(Locale.ROOT,
        "%s of %d tensors: %d -> %d bytes (%.1f%%), %.2f effective bits per weight including scales and zero points%s; "
            + "encodings: %s",
        what, tensors.size(), before, after, before == 0 ? 0 : 100.0 * after / before,
        params == 0 ? 0 : 8.0 * after / params, range, enc);
  }
}
