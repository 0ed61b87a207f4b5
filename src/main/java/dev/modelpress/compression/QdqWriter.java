package dev.modelpress.compression;

import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Turns a quantized weight into standard ONNX: an int8 initializer {@code W_quantized}, a float
 * scale {@code W_scale}, a zero point {@code W_zero_point}, and nodes whose final output is named
 * {@code W}, so every consumer (including shared and subgraph uses) keeps working unchanged.
 *
 * <p>{@code DequantizeLinear} exists from ai.onnx opset 10 but takes an {@code axis} (per-channel
 * scales) only from opset 13. Raising a model's opset to get it would silently change the meaning
 * of other operators, so below 13 per-channel weights (and below 10 any weights) are decoded by
 * {@code Cast(to=FLOAT) -> Sub(zero point, asymmetric only) -> Mul(scale)} with scales shaped to
 * broadcast along the channel axis: the same arithmetic, available in every opset.
 */
final class QdqWriter {

  /** New initializers and nodes for one weight, and the bytes they store. */
  record Emitted(List<TensorProto> initializers, List<NodeProto> nodes, long bytes) {}

  private final long opset;
  private final Set<String> names = new HashSet<>();

  QdqWriter(GraphProto graph, long opset) {
    this.opset = opset;
    for (TensorProto t : graph.getInitializerList()) {
      names.add(t.getName());
    }
    for (ValueInfoProto v : graph.getInputList()) {
      names.add(v.getName());
    }
    for (ValueInfoProto v : graph.getOutputList()) {
      names.add(v.getName());
    }
    for (NodeProto n : graph.getNodeList()) {
      names.addAll(n.getInputList());
      names.addAll(n.getOutputList());
      names.add(n.getName());
    }
  }

  /** Whether this model's opset can express the tensor with {@code DequantizeLinear}. */
  boolean usesDequantizeLinear(boolean perChannel) {
    return opset >= 13 || (!perChannel && opset >= 10);
  }

  Emitted emit(TensorProto original, WeightQuantizer.Quantized q) {
    String w = original.getName();
    long[] dims = original.getDimsList().stream().mapToLong(Long::longValue).toArray();
    boolean perChannel = q.axis() >= 0;
    int channels = q.scales().length;
    String codesName = fresh(w + "_quantized");
    String scaleName = fresh(w + "_scale");
    String zeroName = fresh(w + "_zero_point");
    List<TensorProto> inits = new ArrayList<>();
    List<NodeProto> nodes = new ArrayList<>();
    inits.add(OnnxTensors.int8Tensor(codesName, q.codes(), dims));
    long bytes = q.codes().length + 4L * channels;

    if (usesDequantizeLinear(perChannel)) {
      long[] paramDims = perChannel ? new long[] {channels} : new long[0];
      inits.add(OnnxTensors.floatTensor(scaleName, q.scales(), paramDims));
      inits.add(OnnxTensors.int8Tensor(zeroName, q.zeroPoints(), paramDims));
      bytes += channels;
      NodeProto.Builder dq = NodeProto.newBuilder()
          .setName(fresh(w + "_DequantizeLinear"))
          .setOpType("DequantizeLinear")
          .addInput(codesName)
          .addInput(scaleName)
          .addInput(zeroName)
          .addOutput(w);
      if (perChannel) {
        dq.addAttribute(AttributeProto.newBuilder().setName("axis").setType(AttributeProto.AttributeType.INT).setI(q.axis()));
      }
      nodes.add(dq.build());
      return new Emitted(inits, nodes, bytes);
    }

    // Per-channel parameters shaped [C, 1, ..., 1] so they broadcast along the channel axis.
    long[] paramDims = new long[perChannel ? dims.length - q.axis() : 0];
    if (perChannel) {
      java.util.Arrays.fill(paramDims, 1);
      paramDims[0] = channels;
    }
    String cast = fresh(w + "_cast");
    nodes.add(NodeProto.newBuilder()
        .setName(fresh(w + "_Cast"))
        .setOpType("Cast")
        .addInput(codesName)
        .addOutput(cast)
        .addAttribute(AttributeProto.newBuilder().setName("to").setType(AttributeProto.AttributeType.INT)
            .setI(TensorProto.DataType.FLOAT_VALUE))
        .build());
    String centered = cast;
    boolean hasZeroPoint = false;
    for (byte z : q.zeroPoints()) {
      hasZeroPoint |= z != 0;
    }
    if (hasZeroPoint) {
      float[] zp = new float[channels];
      for (int c = 0; c < channels; c++) {
        zp[c] = q.zeroPoints()[c];
      }
      inits.add(OnnxTensors.floatTensor(zeroName, zp, paramDims));
      bytes += 4L * channels;
      centered = fresh(w + "_centered");
      nodes.add(NodeProto.newBuilder()
          .setName(fresh(w + "_Sub"))
          .setOpType("Sub")
          .addInput(cast)
          .addInput(zeroName)
          .addOutput(centered)
          .build());
    }
    inits.add(OnnxTensors.floatTensor(scaleName, q.scales(), paramDims));
    nodes.add(NodeProto.newBuilder()
        .setName(fresh(w + "_Mul"))
        .setOpType("Mul")
        .addInput(centered)
        .addInput(scaleName)
        .addOutput(w)
        .build());
    return new Emitted(inits, nodes, bytes);
  }

  /** {@code base}, or {@code base_1}, {@code base_2}, … if the graph already uses it. */
  private String fresh(String base) {
    String name = base;
    for (int i = 1; names.contains(name); i++) {
      name = base + "_" + i;
    }
    names.add(name);
    return name;
  }
}
