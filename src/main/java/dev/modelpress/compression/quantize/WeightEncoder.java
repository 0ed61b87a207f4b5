package dev.modelpress.compression.quantize;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto.DataType;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * Writes a quantized weight as ONNX whose decoded output keeps the weight's name, so every consumer
 * (shared uses, subgraphs) keeps working. Four encodings:
 *
 * <ul>
 *   <li>{@link Encoding#DEQUANTIZE_LINEAR}: integer initializer + scale + zero point into {@code
 *       DequantizeLinear}. int8/uint8 per tensor from opset 10, per axis from 13; blocked
 *       ({@code block_size}) and int4/uint4 (two codes per byte, first in the low nibble) from 21.
 *   <li>{@link Encoding#MATMUL_NBITS}: ONNX Runtime's {@code com.microsoft.MatMulNBits} replaces each
 *       {@code MatMul} that reads a 2-D weight [K, N]: B is uint8 [N, ceil(K/block), block/2] (the
 *       transposed weight in blocks along K, low nibble first, codes 0..15), scales float [N·blocks],
 *       zero points packed two per byte [N·ceil(blocks/2)] or absent (default 8 = symmetric).
 *   <li>{@link Encoding#UNPACK}: for what the opset's DequantizeLinear cannot say (sub-byte codes
 *       before opset 21, 2-bit, binary, ternary, per-channel before 13, blocks before 21): codes as
 *       int8/uint8, or packed 8/b to a uint8 byte, unpacked by {@code BitShift} + {@code
 *       BitwiseAnd} (opset 18; {@code Mod} before) + {@code Cast}, then {@code Sub} zero point and
 *       {@code Mul} scale broadcast over a view of the weight ([outer, blocks, group, inner] for
 *       groups), then {@code Reshape} (and {@code Slice} off a short last group). Every input is a
 *       constant, so runtimes fold the chain once at load; the file keeps the packed bytes.
 *   <li>{@link Encoding#CAST}: FLOAT16 or BFLOAT16 initializer into {@code Cast(to = FLOAT)}.
 * </ul>
 */
public final class WeightEncoder {

  /** The encoding chosen for a weight, named as the report shows it. */
  public enum Encoding {
    DEQUANTIZE_LINEAR("DequantizeLinear"),
    MATMUL_NBITS("MatMulNBits"),
    UNPACK("packed+unpack"),
    CAST("Cast");

    private final String label;

    Encoding(String label) {
      this.label = label;
    }

    public String label() {
      return label;
    }
  }

  /**
   * What one weight became: new initializers, nodes that decode it (to be placed before all
   * others), the bytes the initializers store, and for MatMulNBits a rewrite of each {@code MatMul}
   * node that reads the weight as input 1.
   */
  public record Emitted(List<TensorProto> initializers, List<NodeProto> decoders, long bytes, Encoding encoding,
      UnaryOperator<NodeProto> matMulRewrite) {}

  /** The contrib-operator domain of MatMulNBits. */
  public static final String MICROSOFT_DOMAIN = "com.microsoft";

  private final long opset;
  private final Set<String> names = new HashSet<>();

  /**
   * An encoder for weights of {@code graph} and its subgraphs, whose ai.onnx opset is {@code
   * opset}: fresh names avoid every name used anywhere in the graph, subgraphs included, so a
   * decoder may be placed in any scope.
   */
  public WeightEncoder(GraphProto graph, long opset) {
    this.opset = opset;
    collectNames(graph);
  }

  private void collectNames(GraphProto graph) {
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
      for (AttributeProto a : n.getAttributeList()) {
        if (a.hasG()) {
          collectNames(a.getG());
        }
        for (GraphProto g : a.getGraphsList()) {
          collectNames(g);
        }
      }
    }
  }

  /** Whether this opset's DequantizeLinear decodes the scheme and layout. */
  public boolean dequantizeLinearFits(QuantScheme s, QuantLayout l) {
    if (s.kind() != QuantScheme.Kind.INTEGER) {
      return false;
    }
    if (s.bits() == 4) {
      return opset >= 21;
    }
    if (s.bits() != 8) {
      return false;
    }
    return switch (l.mode()) {
      case TENSOR -> opset >= 10;
      case CHANNEL -> opset >= 13;
      case GROUP -> opset >= 21;
    };
  }

  /** Whether MatMulNBits can hold the weight: 4-bit, 2-D, blocks along K of a power-of-two size ≥ 16. */
  public static boolean matMulNBitsFits(QuantScheme s, QuantLayout l) {
    int g = l.groupSize();
    return s.kind() == QuantScheme.Kind.INTEGER && s.bits() == 4 && l.mode() == QuantLayout.Mode.GROUP
        && l.dims().length == 2 && l.axis() == 0 && g >= 16 && Integer.bitCount(g) == 1;
  }

  /** The lowest opset that the unpack subgraph for these bits needs (BitShift is opset 11). */
  public static long unpackMinOpset(QuantScheme s) {
    return storageBits(s) < 8 ? 11 : 10;
  }

  /** Bits a code occupies when stored: 1 for binary, 2 for ternary, else the scheme's bits. */
  public static int storageBits(QuantScheme s) {
    return s.bits();
  }

  // ---- DequantizeLinear ------------------------------------------------------------------

  public Emitted dequantizeLinear(String w, QuantLayout l, QuantScheme s, LinearQuantizer.Result q) {
    if (q.fractionalZeroPoints() != null) {
      throw new IllegalArgumentException("DequantizeLinear zero points are integers; " + w + " has fractional ones");
    }
    boolean four = s.bits() == 4;
    DataType type = four ? (s.signed() ? DataType.INT4 : DataType.UINT4) : (s.signed() ? DataType.INT8 : DataType.UINT8);
    byte[] zp = new byte[q.zeroPoints().length];
    for (int p = 0; p < zp.length; p++) {
      zp[p] = (byte) q.zeroPoints()[p];
    }
    List<TensorProto> inits = new ArrayList<>();
    String codes = fresh(w + "_quantized");
    String scale = fresh(w + "_scale");
    String zero = fresh(w + "_zero_point");
    inits.add(tensor(codes, type, four ? pack(q.codes(), 4) : q.codes(), l.dims()));
    inits.add(floats(scale, q.scales(), l.paramDims()));
    inits.add(tensor(zero, type, four ? pack(zp, 4) : zp, l.paramDims()));
    NodeProto.Builder dq = node("DequantizeLinear", w + "_DequantizeLinear", List.of(codes, scale, zero), w);
    if (l.mode() != QuantLayout.Mode.TENSOR) {
      dq.addAttribute(intAttr("axis", l.axis()));
    }
    if (l.mode() == QuantLayout.Mode.GROUP) {
      dq.addAttribute(intAttr("block_size", l.groupSize()));
    }
    return new Emitted(inits, List.of(dq.build()), bytes(inits), Encoding.DEQUANTIZE_LINEAR, null);
  }

  // ---- MatMulNBits -----------------------------------------------------------------------

  public Emitted matMulNBits(String w, QuantLayout l, QuantScheme s, LinearQuantizer.Result q) {
    if (!matMulNBitsFits(s, l)) {
      throw new IllegalArgumentException("MatMulNBits cannot hold " + s.label() + " " + l);
    }
    int k = (int) l.dims()[0];
    int n = (int) l.dims()[1];
    int g = l.groupSize();
    int blocks = l.blocks();
    // MatMulNBits codes are 0..15 with zero point 8 by default: signed grids shift by 8.
    int off = 8 - s.offset();
    byte[] column = new byte[blocks * g];
    byte[] b = new byte[n * blocks * g / 2];
    float[] scales = new float[n * blocks];
    byte[] zp = new byte[n * blocks];
    for (int c = 0; c < n; c++) {
      for (int blk = 0; blk < blocks; blk++) {
        int p = blk * n + c;
        scales[c * blocks + blk] = q.scales()[p];
        zp[c * blocks + blk] = (byte) (q.zeroPoints()[p] + off);
      }
      for (int r = 0; r < blocks * g; r++) {
        column[r] = r < k ? (byte) (LinearQuantizer.code(q.codes()[r * n + c], s) + off) : zp[c * blocks + r / g];
      }
      QuantKernels.pack4(column, 0, column.length, b, c * blocks * g / 2);
    }
    List<TensorProto> inits = new ArrayList<>();
    String bName = fresh(w + "_MatMulNBits_B");
    String scaleName = fresh(w + "_MatMulNBits_scales");
    inits.add(tensor(bName, DataType.UINT8, b, n, blocks, g / 2));
    inits.add(floats(scaleName, scales, (long) n * blocks));
    String zpName = null;
    if (q.fractionalZeroPoints() != null) {
      // MatMulNBits also takes unpacked zero points of A's type: (q − zp)·scale with a real zp.
      float[] zf = new float[n * blocks];
      for (int c = 0; c < n; c++) {
        for (int blk = 0; blk < blocks; blk++) {
          zf[c * blocks + blk] = q.zeroPoint(blk * n + c) + off;
        }
      }
      zpName = fresh(w + "_MatMulNBits_zero_points");
      inits.add(floats(zpName, zf, (long) n * blocks));
    } else if (!s.symmetric()) {
      int perColumn = (blocks + 1) / 2;
      byte[] packed = new byte[n * perColumn];
      for (int c = 0; c < n; c++) {
        QuantKernels.pack4(zp, c * blocks, blocks, packed, c * perColumn);
      }
      zpName = fresh(w + "_MatMulNBits_zero_points");
      inits.add(tensor(zpName, DataType.UINT8, packed, (long) n * perColumn));
    }
    String z = zpName;
    UnaryOperator<NodeProto> rewrite = mm -> {
      NodeProto.Builder nb = NodeProto.newBuilder()
          .setName(mm.getName().isEmpty() ? fresh(w + "_MatMulNBits") : mm.getName())
          .setOpType("MatMulNBits")
          .setDomain(MICROSOFT_DOMAIN)
          .addInput(mm.getInput(0)).addInput(bName).addInput(scaleName)
          .addOutput(mm.getOutput(0))
          .addAttribute(intAttr("K", k)).addAttribute(intAttr("N", n))
          .addAttribute(intAttr("bits", 4)).addAttribute(intAttr("block_size", g));
      if (z != null) {
        nb.addInput(z);
      }
      return nb.build();
    };
    return new Emitted(inits, List.of(), bytes(inits), Encoding.MATMUL_NBITS, rewrite);
  }

  // ---- packed codes + unpack subgraph ----------------------------------------------------

  public Emitted unpack(String w, QuantLayout l, QuantScheme s, LinearQuantizer.Result q) {
    int bits = storageBits(s);
    if (opset < unpackMinOpset(s)) {
      throw new IllegalArgumentException(bits + "-bit codes need opset " + unpackMinOpset(s) + ", the model has " + opset);
    }
    boolean group = l.mode() == QuantLayout.Mode.GROUP;
    long[] dims = l.dims();
    long[] qDims = group ? new long[] {l.outer(), l.blocks(), l.groupSize(), l.inner()} : dims;
    long[] pDims = switch (l.mode()) {
      case TENSOR -> new long[0];
      case CHANNEL -> {
        long[] d = new long[dims.length - l.axis()];
        Arrays.fill(d, 1);
        d[0] = l.extent();
        yield d;
      }
      case GROUP -> new long[] {l.outer(), l.blocks(), 1, l.inner()};
    };
    // Binary codes are ±1: stored as one bit u = (q + 1) / 2, decoded as (u - 1/2) · 2·scale.
    int step = s.kind() == QuantScheme.Kind.BINARY ? 2 : 1;
    int qmin = s.qmin();
    int params = q.scales().length;
    float[] zpf = new float[params];
    float[] sf = new float[params];
    boolean anyZp = false;
    for (int p = 0; p < params; p++) {
      zpf[p] = bits < 8 ? (q.zeroPoint(p) - qmin) / step : q.zeroPoint(p);
      sf[p] = q.scales()[p] * step;
      anyZp |= zpf[p] != 0;
    }
    byte[] codes = viewCodes(l, q, s);
    List<TensorProto> inits = new ArrayList<>();
    List<NodeProto> nodes = new ArrayList<>();
    String codesName = fresh(w + "_quantized");
    String asFloat = fresh(w + "_codes");
    if (bits == 8) {
      inits.add(tensor(codesName, s.signed() ? DataType.INT8 : DataType.UINT8, codes, qDims));
      nodes.add(cast(w, codesName, asFloat));
    } else {
      int per = 8 / bits;
      for (int e = 0; e < codes.length; e++) {
        codes[e] = (byte) ((LinearQuantizer.code(codes[e], s) - qmin) / step);
      }
      int packedLength = (codes.length + per - 1) / per;
      inits.add(tensor(codesName, DataType.UINT8, pack(codes, bits), packedLength, 1));
      byte[] shifts = new byte[per];
      for (int j = 0; j < per; j++) {
        shifts[j] = (byte) (j * bits);
      }
      String shiftsName = fresh(w + "_shifts");
      inits.add(tensor(shiftsName, DataType.UINT8, shifts, per));
      String shifted = fresh(w + "_shifted");
      nodes.add(node("BitShift", w + "_BitShift", List.of(codesName, shiftsName), shifted)
          .addAttribute(AttributeProto.newBuilder().setName("direction").setType(AttributeProto.AttributeType.STRING)
              .setS(ByteString.copyFromUtf8("RIGHT")))
          .build());
      String fields = fresh(w + "_fields");
      String maskName = fresh(w + "_mask");
      if (opset >= 18) {
        inits.add(tensor(maskName, DataType.UINT8, new byte[] {(byte) ((1 << bits) - 1)}));
        nodes.add(node("BitwiseAnd", w + "_BitwiseAnd", List.of(shifted, maskName), fields).build());
      } else {
        inits.add(tensor(maskName, DataType.UINT8, new byte[] {(byte) (1 << bits)}));
        nodes.add(node("Mod", w + "_Mod", List.of(shifted, maskName), fields).build());
      }
      String fieldsFloat = fresh(w + "_fields_float");
      nodes.add(cast(w, fields, fieldsFloat));
      String flat = fieldsFloat;
      if ((long) packedLength * per != codes.length) {
        flat = fresh(w + "_flat");
        nodes.add(reshape(w, fieldsFloat, flat, new long[] {-1}, inits));
        String sliced = fresh(w + "_unpadded");
        nodes.add(slice(w, flat, sliced, 0, codes.length, inits));
        flat = sliced;
      }
      nodes.add(reshape(w, flat, asFloat, qDims, inits));
    }
    String centered = asFloat;
    if (anyZp) {
      String zeroName = fresh(w + "_zero_point");
      // Symmetric grids share one zero point (the storage offset): a scalar broadcasts it.
      boolean uniform = true;
      for (float z : zpf) {
        uniform &= z == zpf[0];
      }
      inits.add(uniform ? floats(zeroName, new float[] {zpf[0]}) : floats(zeroName, zpf, pDims));
      centered = fresh(w + "_centered");
      nodes.add(node("Sub", w + "_Sub", List.of(asFloat, zeroName), centered).build());
    }
    String scaleName = fresh(w + "_scale");
    inits.add(floats(scaleName, sf, pDims));
    String scaled = group ? fresh(w + "_blocks") : w;
    nodes.add(node("Mul", w + "_Mul", List.of(centered, scaleName), scaled).build());
    if (group) {
      if (l.padded()) {
        String rows = fresh(w + "_padded");
        nodes.add(reshape(w, scaled, rows, new long[] {l.outer(), (long) l.blocks() * l.groupSize(), l.inner()}, inits));
        String cut = fresh(w + "_cut");
        nodes.add(slice(w, rows, cut, 1, l.extent(), inits));
        scaled = cut;
      }
      nodes.add(reshape(w, scaled, w, dims, inits));
    }
    return new Emitted(inits, nodes, bytes(inits), Encoding.UNPACK, null);
  }

  /** Codes in the order of the unpack view: the tensor's own, or padded to whole groups with zero points. */
  private static byte[] viewCodes(QuantLayout l, LinearQuantizer.Result q, QuantScheme s) {
    if (!l.padded()) {
      return q.codes().clone();
    }
    int padded = l.blocks() * l.groupSize();
    byte[] out = new byte[l.outer() * padded * l.inner()];
    int inner = l.inner();
    for (int o = 0; o < l.outer(); o++) {
      for (int d = 0; d < padded; d++) {
        for (int i = 0; i < inner; i++) {
          int dst = (o * padded + d) * inner + i;
          out[dst] = d < l.extent() ? q.codes()[(o * l.extent() + d) * inner + i]
              : (byte) q.zeroPoints()[(o * l.blocks() + d / l.groupSize()) * inner + i];
        }
      }
    }
    return out;
  }

  // ---- float casts -----------------------------------------------------------------------

  /** FLOAT16 or BFLOAT16 copy of {@code w} decoded by {@code Cast(to = FLOAT)}. */
  public Emitted cast(String name, float[] w, long[] dims, boolean bfloat16) {
    ByteBuffer buf = ByteBuffer.allocate(w.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : w) {
      buf.putShort(bfloat16 ? toBfloat16(v) : Float.floatToFloat16(v));
    }
    String stored = fresh(name + (bfloat16 ? "_bf16" : "_fp16"));
    List<TensorProto> inits = List.of(tensor(stored, bfloat16 ? DataType.BFLOAT16 : DataType.FLOAT16, buf.array(), dims));
    NodeProto c = node("Cast", name + "_Cast", List.of(stored), name).addAttribute(intAttr("to", DataType.FLOAT_VALUE))
        .build();
    return new Emitted(inits, List.of(c), bytes(inits), Encoding.CAST, null);
  }

  /**
   * The same decoding for a weight that was FLOAT16 in the model: the decoder's float result gets a
   * fresh name and a {@code Cast(to = FLOAT16)} produces the weight's own name, so every consumer
   * still reads the half-precision tensor it was typed for. Not for MatMulNBits (its rewrite reads
   * the codes directly, with float scales).
   */
  public Emitted toHalf(String name, Emitted e) {
    if (e.matMulRewrite() != null) {
      throw new IllegalArgumentException("MatMulNBits output cannot be cast back to FLOAT16");
    }
    String decoded = fresh(name + "_decoded_fp32");
    List<NodeProto> nodes = new ArrayList<>();
    for (NodeProto n : e.decoders()) {
      NodeProto.Builder b = n.toBuilder();
      for (int i = 0; i < b.getOutputCount(); i++) {
        if (b.getOutput(i).equals(name)) {
          b.setOutput(i, decoded);
        }
      }
      nodes.add(b.build());
    }
    nodes.add(node("Cast", fresh(name + "_CastToFloat16"), List.of(decoded), name)
        .addAttribute(intAttr("to", DataType.FLOAT16_VALUE)).build());
    return new Emitted(e.initializers(), nodes, e.bytes(), e.encoding(), null);
  }

  /** Round-to-nearest-even bfloat16 bits of a finite float. */
  public static short toBfloat16(float v) {
    int bits = Float.floatToRawIntBits(v);
    int rounding = 0x7FFF + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  /** The float a bfloat16 stands for. */
  public static float fromBfloat16(short b) {
    return Float.intBitsToFloat((b & 0xFFFF) << 16);
  }

  // ---- helpers ---------------------------------------------------------------------------

  /** Packs codes (low {@code bits} of each byte) 8/bits per byte, element 0 in the lowest bits. */
  public static byte[] pack(byte[] codes, int bits) {
    if (bits == 8) {
      return codes;
    }
    int per = 8 / bits;
    byte[] out = new byte[(codes.length + per - 1) / per];
    if (bits == 4) {
      QuantKernels.pack4(codes, 0, codes.length, out, 0);
      return out;
    }
    int mask = (1 << bits) - 1;
    for (int e = 0; e < codes.length; e++) {
      out[e / per] |= (byte) ((codes[e] & mask) << (bits * (e % per)));
    }
    return out;
  }

  private NodeProto cast(String w, String in, String out) {
    return node("Cast", w + "_Cast", List.of(in), out).addAttribute(intAttr("to", DataType.FLOAT_VALUE)).build();
  }

  private NodeProto reshape(String w, String in, String out, long[] shape, List<TensorProto> inits) {
    String shapeName = fresh(w + "_shape");
    inits.add(int64s(shapeName, shape, shape.length));
    return node("Reshape", w + "_Reshape", List.of(in, shapeName), out).build();
  }

  private NodeProto slice(String w, String in, String out, long axis, long end, List<TensorProto> inits) {
    String starts = fresh(w + "_slice_starts");
    String ends = fresh(w + "_slice_ends");
    String axes = fresh(w + "_slice_axes");
    inits.add(int64s(starts, new long[] {0}, 1));
    inits.add(int64s(ends, new long[] {end}, 1));
    inits.add(int64s(axes, new long[] {axis}, 1));
    return node("Slice", w + "_Slice", List.of(in, starts, ends, axes), out).build();
  }

  private NodeProto.Builder node(String op, String name, List<String> inputs, String output) {
    return NodeProto.newBuilder().setName(fresh(name)).setOpType(op).addAllInput(inputs).addOutput(output);
  }

  private static AttributeProto intAttr(String name, long v) {
    return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INT).setI(v).build();
  }

  private static TensorProto tensor(String name, DataType type, byte[] raw, long... dims) {
    // The arrays are freshly built here or by the quantizer and never written again.
    return TensorProto.newBuilder().setName(name).setDataType(type.getNumber())
        .addAllDims(Arrays.stream(dims).boxed().toList()).setRawData(UnsafeByteOperations.unsafeWrap(raw)).build();
  }

  private static TensorProto floats(String name, float[] values, long... dims) {
    ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    buf.asFloatBuffer().put(values);
    return tensor(name, DataType.FLOAT, buf.array(), dims);
  }

  private static TensorProto int64s(String name, long[] values, long... dims) {
    ByteBuffer buf = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    buf.asLongBuffer().put(values);
    return tensor(name, DataType.INT64, buf.array(), dims);
  }

  private static long bytes(List<TensorProto> inits) {
    long b = 0;
    for (TensorProto t : inits) {
      b += t.getRawData().size();
    }
    return b;
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
