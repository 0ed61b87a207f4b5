package dev.modelpress.compression;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.ExternalDataWriter;
import dev.modelpress.format.onnx.OnnxExternalData;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * int8 weight-only quantization of an ONNX model of any size, file to file, with bounded heap.
 *
 * <p>The input may keep its weights in external data files (models over 2 GiB must). Each selected
 * weight is read from its memory mapping in fixed-size chunks, twice: once for its per-channel (or
 * per-tensor) range, once to write int8 codes straight to the output's external data file. No
 * tensor is ever held whole on the heap, so memory does not grow with the model: the heap holds the
 * graph structure, one chunk, and one scale per channel. Unselected external tensors are copied to
 * the output data file unchanged; inline tensors stay inline.
 *
 * <p>The output is {@code out} (the graph, small) plus {@code out + ".data"} beside it, the layout
 * ONNX Runtime and {@code onnx.load} expect: external locations are resolved relative to the model
 * file's directory. The arithmetic (ranges, scales, zero points, rounding) is {@link
 * WeightQuantizer}'s, so the codes equal those of the in-memory pipeline bit for bit.
 */
public final class ExternalDataQuantizer {

  /** Floats per chunk: 4 MiB of fp32 input, 1 MiB of int8 output. */
  static final int CHUNK = 1 << 20;

  private ExternalDataQuantizer() {}

  /**
   * Why these steps cannot run on a model with external data yet, or {@code null} when they can:
   * one int8 signed weight-only quantize step, per channel or per tensor, min/max range, without
   * datasets (the steps that stream so far).
   */
  public static String unsupported(List<StepSpec> steps, boolean datasets) {
    String prefix = "models with external data are compressed by the streaming quantizer, which runs one int8 "
        + "weight-only quantize step (per channel or per tensor, min/max range, signed) so far; ";
    if (steps.size() != 1 || !(steps.getFirst() instanceof QuantizeSpec q)) {
      return prefix + (steps.size() != 1 ? steps.size() + " steps were given" : "a " + steps.getFirst().type()
          + " step was given");
    }
    List<String> not = new ArrayList<>();
    if (!q.isInteger()) {
      not.add("dtype " + q.dtype().name().toLowerCase(java.util.Locale.ROOT));
    } else {
      if (q.bits() != 8 || q.scheme() != QuantizeSpec.Scheme.INTEGER) {
        not.add(q.scheme() == QuantizeSpec.Scheme.TERNARY ? "ternary" : "bits " + q.bits());
      }
      if (q.granularity() == QuantizeSpec.Granularity.GROUP) {
        not.add("granularity group");
      }
      if (q.range() != QuantizeSpec.RangeMethod.MINMAX) {
        not.add("range mse");
      }
      if (!q.signed()) {
        not.add("signed false");
      }
      if (q.format() == QuantizeSpec.Format.MATMULNBITS) {
        not.add("format matmulnbits");
      }
    }
    if (datasets) {
      not.add("calibration or evaluation datasets");
    }
    return not.isEmpty() ? null : prefix + "not built yet: " + String.join(", ", not);
  }

  /**
   * Quantizes the weights {@code spec} selects (int8 only) from {@code in} into {@code out} and
   * {@code out.data}.
   *
   * @throws FormatException the input is malformed or an external reference is unsafe
   * @throws CompressionException nothing selected, a selected tensor is not FLOAT or holds NaN or
   *     infinity, or the model's opset cannot express the decoding
   */
  public static StepReport quantize(Path in, Path out, QuantizeSpec spec, Progress progress)
      throws FormatException, IOException {
    if (spec.bits() != 8) {
      throw new CompressionException("bits: only 8-bit quantization streams external data so far");
    }
    Path dataFile = out.resolveSibling(out.getFileName() + ".data");
    try (OnnxExternalData source = OnnxExternalData.open(in);
        ExternalDataWriter data = ExternalDataWriter.create(dataFile)) {
      ModelProto model = source.model();
      GraphProto graph = model.getGraph();
      List<TensorInfo> selected = TensorSelector.select(OnnxModels.summarize(model).tensors(), spec.include(), spec.exclude());
      if (selected.isEmpty()) {
        throw new CompressionException("step 0 (quantize) selects no tensor");
      }
      for (TensorInfo t : selected) {
        String why = TensorSelector.unsupportedType(spec, t);
        if (why != null) {
          throw new CompressionException("step 0: " + why);
        }
        if (!t.mainGraphInitializer()) {
          // Streaming rewrites main-graph initializers only; skipping the rest silently would leave
          // part of the selection in float.
          throw new CompressionException("step 0: tensor '" + t.name() + "' (" + t.location() + ") is not a main-graph "
              + "initializer; streaming quantization of external-data models rewrites initializers only (exclude it)");
        }
      }
      boolean perChannel = spec.granularity() == QuantizeSpec.Granularity.CHANNEL;
      long opset = OnnxModels.defaultOpset(model);
      if (opset < (perChannel ? 13 : 10)) {
        throw new CompressionException("opset " + opset + ": streaming int8 output uses DequantizeLinear"
            + (perChannel ? " with an axis, which needs opset 13" : ", which needs opset 10"));
      }
      Map<String, Integer> axes = OnnxPipeline.channelAxes(graph);
      Set<String> chosen = new HashSet<>();
      selected.forEach(t -> chosen.add(t.name()));
      Names names = new Names(graph);

      GraphProto.Builder g = graph.toBuilder().clearInitializer().clearNode().clearInput();
      List<NodeProto> decoders = new ArrayList<>();
      List<TensorReport> reports = new ArrayList<>();
      float[] floats = new float[CHUNK];
      ByteBuffer codes = ByteBuffer.allocateDirect(CHUNK);
      int done = 0;
      for (TensorProto t : graph.getInitializerList()) {
        if (!chosen.contains(t.getName())) {
          g.addInitializer(OnnxExternalData.isExternal(t) ? data.copy(t, source.data(t)) : t);
          continue;
        }
        progress.update(0, 1, "quantize", done++, selected.size(), "quantizing " + t.getName());
        long[] shape = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        if (perChannel && shape.length == 0) {
          throw new CompressionException("tensor '" + t.getName() + "' is a scalar; it has no channel axis");
        }
        int axis = perChannel ? axes.getOrDefault(t.getName(), 0) : -1;
        MemorySegment w = floatSegment(source, t);
        Layout layout = Layout.of(shape, axis);
        Range range = range(t.getName(), w, layout, floats, spec.symmetric());
        ErrorStats stats = new ErrorStats();
        data.begin();
        writeCodes(w, layout, range, floats, codes, data, stats);
        String codesName = names.fresh(t.getName() + "_quantized");
        String scaleName = names.fresh(t.getName() + "_scale");
        String zeroName = names.fresh(t.getName() + "_zero_point");
        g.addInitializer(data.end(TensorProto.newBuilder().setName(codesName)
            .setDataType(TensorProto.DataType.INT8_VALUE).addAllDims(t.getDimsList()).build()));
        long[] paramDims = perChannel ? new long[] {layout.channels} : new long[0];
        g.addInitializer(OnnxTensors.floatTensor(scaleName, range.scales, paramDims));
        g.addInitializer(OnnxTensors.int8Tensor(zeroName, range.zeroPoints, paramDims));
        NodeProto.Builder dq = NodeProto.newBuilder()
            .setName(names.fresh(t.getName() + "_DequantizeLinear"))
            .setOpType("DequantizeLinear")
            .addInput(codesName).addInput(scaleName).addInput(zeroName)
            .addOutput(t.getName());
        if (perChannel) {
          dq.addAttribute(AttributeProto.newBuilder().setName("axis").setType(AttributeProto.AttributeType.INT).setI(axis));
        }
        decoders.add(dq.build());
        long n = layout.elements;
        reports.add(new TensorReport(t.getName(), t.getDimsList(), n, 4 * n, n + 5L * layout.channels,
            stats.sparsityBefore(), stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), 8, spec.granularity().name()));
      }
      progress.update(0, 1, "quantize", selected.size(), selected.size(), "quantized " + selected.size() + " tensors");
      // Decoders read only initializers, so putting them first keeps any node order valid.
      g.addAllNode(decoders).addAllNode(graph.getNodeList());
      for (ValueInfoProto v : graph.getInputList()) {
        if (!chosen.contains(v.getName())) {
          g.addInput(v);
        }
      }
      OnnxModels.write(model.toBuilder().setGraph(g).build(), out);
      long before = 0;
      long after = 0;
      for (TensorReport r : reports) {
        before += r.bytesBefore();
        after += r.bytesAfter();
      }
      String summary = String.format(java.util.Locale.ROOT,
          "int8 weight quantization (%s, per %s, streamed to external data) of %d tensors: %d -> %d bytes (%.1f%%)",
          spec.symmetric() ? "symmetric" : "asymmetric", spec.granularity().name().toLowerCase(java.util.Locale.ROOT),
          reports.size(), before, after, before == 0 ? 0 : 100.0 * after / before);
      return new StepReport(0, "quantize", summary, reports);
    }
  }

  private static MemorySegment floatSegment(OnnxExternalData source, TensorProto t) {
    if (OnnxExternalData.isExternal(t) || t.hasRawData()) {
      return source.data(t);
    }
    // A small inline tensor in float_data: copy it once into little-endian bytes.
    ByteBuffer b = ByteBuffer.allocate(4 * t.getFloatDataCount()).order(ByteOrder.LITTLE_ENDIAN);
    t.getFloatDataList().forEach(b::putFloat);
    return MemorySegment.ofArray(b.array());
  }

  private static final ValueLayout.OfFloat LE_FLOAT =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /** Elements visited in storage order fall in channel {@code (i / inner) % channels}. */
  private record Layout(long elements, int channels, long inner) {
    static Layout of(long[] shape, int axis) {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      if (axis < 0) {
        return new Layout(n, 1, Math.max(1, n));
      }
      long inner = 1;
      for (int d = axis + 1; d < shape.length; d++) {
        inner *= shape[d];
      }
      return new Layout(n, Math.toIntExact(shape[axis]), Math.max(1, inner));
    }
  }

  private record Range(float[] scales, byte[] zeroPoints, boolean symmetric) {}

  /** Pass 1: per-channel [min(w, 0), max(w, 0)], then scales and zero points as WeightQuantizer sets them. */
  private static Range range(String name, MemorySegment w, Layout layout, float[] buf, boolean symmetric) {
    float[] lo = new float[layout.channels];
    float[] hi = new float[layout.channels];
    long bad = 0;
    int c = 0;
    long j = 0;
    for (long at = 0; at < layout.elements; at += buf.length) {
      int n = (int) Math.min(buf.length, layout.elements - at);
      MemorySegment.copy(w, LE_FLOAT, at * 4, buf, 0, n);
      for (int k = 0; k < n; k++) {
        float v = buf[k];
        bad += (Float.floatToRawIntBits(v) & 0x7f800000) == 0x7f800000 ? 1 : 0;
        lo[c] = Math.min(lo[c], v);
        hi[c] = Math.max(hi[c], v);
        if (++j == layout.inner) {
          j = 0;
          c = c + 1 == layout.channels ? 0 : c + 1;
        }
      }
    }
    if (bad > 0) {
      throw new CompressionException("tensor '" + name + "' contains " + bad + " NaN or infinite value"
          + (bad == 1 ? "" : "s") + "; it cannot be compressed");
    }
    float[] scales = new float[layout.channels];
    byte[] zeroPoints = new byte[layout.channels];
    for (int k = 0; k < layout.channels; k++) {
      double r = symmetric ? Math.max(-(double) lo[k], hi[k]) / 127.0 : ((double) hi[k] - lo[k]) / 255.0;
      float scale = (float) r;
      if (!(scale > 0) || Float.isInfinite(scale)) {
        scales[k] = 1f;
        continue;
      }
      scales[k] = scale;
      zeroPoints[k] = symmetric ? 0 : (byte) Math.max(-128, Math.min(127, Math.rint(-128.0 - lo[k] / (double) scale)));
    }
    return new Range(scales, zeroPoints, symmetric);
  }

  /** Pass 2: codes round(w / scale) + zp, clamped, written chunk by chunk. */
  private static void writeCodes(MemorySegment w, Layout layout, Range range, float[] buf, ByteBuffer out,
      ExternalDataWriter data, ErrorStats stats) throws IOException {
    // Symmetric codes stay in [-127, 127] so negation is exact, as in WeightQuantizer.
    int qmin = range.symmetric ? -127 : -128;
    int c = 0;
    long j = 0;
    for (long at = 0; at < layout.elements; at += buf.length) {
      int n = (int) Math.min(buf.length, layout.elements - at);
      MemorySegment.copy(w, LE_FLOAT, at * 4, buf, 0, n);
      out.clear();
      for (int k = 0; k < n; k++) {
        float scale = range.scales[c];
        int zp = range.zeroPoints[c];
        int q = (int) Math.max(qmin, Math.min(127, Math.rint(buf[k] / scale) + zp));
        out.put((byte) q);
        stats.add(buf[k], (q - zp) * scale);
        if (++j == layout.inner) {
          j = 0;
          c = c + 1 == layout.channels ? 0 : c + 1;
        }
      }
      out.flip();
      data.write(out);
    }
  }

  /** Fresh node and tensor names that do not collide with any name in the graph. */
  private static final class Names {
    private final Set<String> used = new HashSet<>();

    Names(GraphProto g) {
      g.getInitializerList().forEach(t -> used.add(t.getName()));
      g.getInputList().forEach(v -> used.add(v.getName()));
      g.getOutputList().forEach(v -> used.add(v.getName()));
      for (NodeProto n : g.getNodeList()) {
        used.addAll(n.getInputList());
        used.addAll(n.getOutputList());
        used.add(n.getName());
      }
    }

    String fresh(String base) {
      String name = base;
      for (int i = 1; used.contains(name); i++) {
        name = base + "_" + i;
      }
      used.add(name);
      return name;
    }
  }
}
