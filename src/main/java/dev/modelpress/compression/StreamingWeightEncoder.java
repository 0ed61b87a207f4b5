package dev.modelpress.compression;

import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.compression.quantize.LinearQuantizer;
import dev.modelpress.compression.quantize.QuantLayout;
import dev.modelpress.compression.quantize.QuantScheme;
import dev.modelpress.compression.quantize.WeightAxes;
import dev.modelpress.compression.quantize.WeightEncoder;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.ExternalDataWriter;
import dev.modelpress.format.onnx.OnnxExternalData;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.UnaryOperator;

/**
 * One weight of an external-data model, quantized (or cast) from its memory mapping into the
 * output's external data file with the in-memory path's arithmetic ({@link LinearQuantizer}) and
 * encodings ({@link WeightEncoder}), a piece at a time.
 *
 * <p>The tensor is viewed as {@code [outer, extent, inner]} ({@link QuantLayout}) and cut into
 * pieces of about {@value #PIECE_ELEMENTS} elements along the outermost direction whose parameter
 * sets do not straddle pieces:
 *
 * <ul>
 *   <li><b>Own pieces</b> (groups, and channels when the channel axis is the outermost): every
 *       parameter set lies in one piece, so each piece is quantized on its own with any grid and
 *       range method and its codes, scales and zero points are exactly the whole tensor's slices.
 *   <li><b>Shared pieces</b> (per tensor, and channels inside an outer axis such as a MatMul weight's
 *       columns): min/max integer grids take two passes, the first for each set's range, the second
 *       quantizing each piece with two extra rows holding that range appended, so {@link
 *       LinearQuantizer} derives the whole tensor's scale from the piece (its range is the union).
 *       MSE ranges, binary and ternary need all of a set at once: these tensors are quantized whole
 *       from the mapping (one code byte per weight on the heap).
 * </ul>
 *
 * <p>Codes of the {@code DequantizeLinear} and {@code Cast} encodings are written straight to the
 * data file as pieces finish (4-bit codes packed two per byte across piece boundaries); {@code
 * MatMulNBits} and the packed-unpack encoding reorder codes across the whole tensor, so their codes
 * are gathered first (one byte per weight, refused above {@link #wholeLimit}). Every emitted
 * initializer of at least {@value #EXTERNAL_MIN_BYTES} bytes is moved to the data file.
 */
final class StreamingWeightEncoder {

  /** Elements per piece: 4 MiB of fp32. */
  static final int PIECE_ELEMENTS = 1 << 20;

  /** Emitted initializers this large go to the data file (onnx.save's default threshold). */
  static final int EXTERNAL_MIN_BYTES = 1024;

  private static final ValueLayout.OfFloat LE_FLOAT =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort LE_SHORT =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /**
   * What one weight became: its initializers (large ones external), the nodes decoding it, a
   * MatMul rewrite for MatMulNBits (else {@code null}) and its report; {@code initializers} is
   * {@code null} when the weight stays as it is (already in the cast's type).
   */
  record Done(List<TensorProto> initializers, List<NodeProto> decoders, UnaryOperator<NodeProto> matMulRewrite,
      TensorReport report) {}

  private final QuantizeSpec spec;
  private final WeightEncoder encoder;
  private final WeightAxes axes;
  private final long opset;
  private final ExternalDataWriter data;
  private final long wholeLimit;
  private final int pieceElements;

  /**
   * @param wholeLimit the most heap bytes a whole tensor's codes may take at once (MatMulNBits,
   *     packed-unpack, MSE/binary/ternary ranges over shared pieces)
   * @param pieceElements target elements per piece ({@link #PIECE_ELEMENTS}; tests cut finer)
   */
  StreamingWeightEncoder(QuantizeSpec spec, WeightEncoder encoder, WeightAxes axes, long opset, ExternalDataWriter data,
      long wholeLimit, int pieceElements) {
    this.pieceElements = pieceElements;
    this.spec = spec;
    this.encoder = encoder;
    this.axes = axes;
    this.opset = opset;
    this.data = data;
    this.wholeLimit = wholeLimit;
  }

  /** A limit for this JVM: a quarter of the heap left after 64 MiB for pieces and the graph. */
  static long defaultWholeLimit() {
    return Math.max(PIECE_ELEMENTS, (Runtime.getRuntime().maxMemory() - (64L << 20)) / 4);
  }

  /**
   * Elements of a FLOAT or FLOAT16 tensor as little-endian bytes: the mapping, raw data, or a typed
   * field decoded once.
   */
  record Source(MemorySegment bytes, boolean half, long elements) {

    static Source of(OnnxExternalData model, TensorProto t, long elements) {
      boolean half = t.getDataType() == TensorProto.DataType.FLOAT16_VALUE;
      if (OnnxExternalData.isExternal(t) || t.hasRawData()) {
        return new Source(model.data(t), half, elements);
      }
      // A small inline tensor in a typed field: decoded to floats once.
      return new Source(MemorySegment.ofArray(dev.modelpress.format.onnx.OnnxTensors.toFloats(t)), false, elements);
    }

    void read(long from, float[] dst, int off, int n) {
      if (half) {
        for (int i = 0; i < n; i++) {
          dst[off + i] = Float.float16ToFloat(bytes.get(LE_SHORT, 2 * (from + i)));
        }
      } else {
        MemorySegment.copy(bytes, LE_FLOAT, 4 * from, dst, off, n);
      }
    }
  }

  /** Quantizes or casts {@code original} (described by {@code info}) read from {@code src}. */
  Done encode(TensorInfo info, TensorProto original, Source src) throws IOException {
    String name = original.getName();
    long[] dims = info.shape().stream().mapToLong(Long::longValue).toArray();
    long n = info.elementCount();
    if (!spec.isInteger() && original.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
      long bytes = 2 * n;
      return new Done(null, List.of(), null, new TensorReport(info.name(), info.shape(), n, bytes, bytes, 0, 0, 0.0,
          null, 16, null, null, spec.dtype().name().toLowerCase(Locale.ROOT), null, null, "unchanged",
          8.0 * bytes / Math.max(1, n)));
    }
    return spec.isInteger() ? quantize(info, name, dims, src) : cast(info, name, dims, src);
  }

  // ---- fp16 / bf16 -----------------------------------------------------------------------

  private Done cast(TensorInfo info, String name, long[] dims, Source src) throws IOException {
    boolean bf16 = spec.dtype() == QuantizeSpec.WeightType.BF16;
    long n = src.elements();
    float[] buf = new float[(int) Math.min(pieceElements, Math.max(1, n))];
    ByteBuffer out = ByteBuffer.allocateDirect(2 * buf.length).order(ByteOrder.LITTLE_ENDIAN);
    ErrorStats stats = new ErrorStats();
    data.begin();
    for (long at = 0; at < n; at += buf.length) {
      int len = (int) Math.min(buf.length, n - at);
      src.read(at, buf, 0, len);
      requireFinite(info.name(), buf, len, src);
      out.clear();
      for (int i = 0; i < len; i++) {
        float v = buf[i];
        short h = bf16 ? WeightEncoder.toBfloat16(v) : Float.floatToFloat16(v);
        out.putShort(h);
        stats.add(v, bf16 ? WeightEncoder.fromBfloat16(h) : Float.float16ToFloat(h));
      }
      data.write(out.flip());
    }
    TensorProto stored = data.end(TensorProto.newBuilder().setName(name)
        .setDataType(bf16 ? TensorProto.DataType.BFLOAT16_VALUE : TensorProto.DataType.FLOAT16_VALUE)
        .addAllDims(info.shape()).build());
    // The encoder names the stored tensor and writes the Cast; its (empty) data is replaced by ours.
    WeightEncoder.Emitted e = encoder.cast(name, new float[0], dims, bf16);
    List<TensorProto> inits = withStreamedFirst(e, stored);
    long bytes = bytes(inits);
    TensorReport report = new TensorReport(info.name(), info.shape(), n, 4 * n, bytes, stats.sparsityBefore(),
        stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), 16, null, null,
        spec.dtype().name().toLowerCase(Locale.ROOT), null, null, e.encoding().label(), 8.0 * bytes / Math.max(1, n));
    return new Done(inits, e.decoders(), null, report);
  }

  // ---- integer grids ---------------------------------------------------------------------

  /** A contiguous run of elements, its layout, and its parameter sets (its own slice, or all of them). */
  private record Piece(long start, int count, QuantLayout layout, int paramStart, int paramCount) {}

  private enum Mode {
    /** Each piece holds whole parameter sets: quantized on its own. */
    OWN,
    /** Min/max ranges over all pieces, then each piece quantized with the range appended. */
    INJECT,
    /** Quantized whole from the mapping (codes on the heap), then walked piece by piece. */
    WHOLE
  }

  private Done quantize(TensorInfo info, String name, long[] dims, Source src) throws IOException {
    boolean mse = spec.range() == QuantizeSpec.RangeMethod.MSE;
    boolean half = src.half();
    QuantScheme scheme = WeightOnlyQuantization.scheme(spec);
    QuantLayout layout = layout(info, name, dims);
    WeightEncoder.Encoding encoding = encoding(name, layout, scheme, half);
    boolean own = layout.mode() == QuantLayout.Mode.GROUP
        || layout.mode() == QuantLayout.Mode.CHANNEL && layout.outer() == 1;
    Mode mode;
    if (own && !(layout.mode() == QuantLayout.Mode.GROUP && layout.outer() == 1 && layout.inner() == 1)) {
      mode = Mode.OWN;
    } else if (!own && scheme.kind() == QuantScheme.Kind.INTEGER && !mse) {
      mode = Mode.INJECT;
    } else {
      // A vector in groups is cut by the same rule but quantized whole: LinearQuantizer picks its
      // kernel by whether the extent is a multiple of the group, which pieces would change.
      mode = Mode.WHOLE;
    }
    long n = layout.size();
    boolean gather = encoding != WeightEncoder.Encoding.DEQUANTIZE_LINEAR;
    // A FLOAT16 tensor quantized whole is decoded to floats first: four more bytes per weight.
    long heapBytes = mode == Mode.WHOLE && half ? 5 * n : n;
    if ((gather || mode == Mode.WHOLE) && heapBytes > wholeLimit) {
      String why = gather ? "its " + encoding.label() + " encoding reorders codes across the whole tensor"
          : "its " + (mse ? "mse range" : scheme.label()) + " parameters are chosen over whole "
              + (layout.mode() == QuantLayout.Mode.TENSOR ? "tensors" : "channels that span the tensor");
      throw new CompressionException("tensor '" + info.name() + "' has " + n + " weights; " + why
          + ", which needs " + heapBytes + " bytes on the heap, above this worker's limit of " + wholeLimit
          + " (use granularity group with format qdq on an opset 21 model, which streams)");
    }
    List<Piece> pieces = pieces(layout);
    int params = layout.params();
    float[] scales = new float[params];
    int[] zeroPoints = new int[params];
    // One code byte per weight on the heap only where the encoding or the range method needs them all.
    byte[] all = gather || mode == Mode.WHOLE ? new byte[Math.toIntExact(n)] : null;
    double clip;
    if (mode == Mode.WHOLE) {
      requireFiniteWhole(info.name(), src);
      MemorySegment w = half ? MemorySegment.ofArray(readAll(src)) : src.bytes();
      clip = LinearQuantizer.quantize(w, layout, scheme, mse, all, scales, zeroPoints);
    } else if (mode == Mode.INJECT) {
      ranges(info.name(), src, layout, pieces, scales, zeroPoints, scheme);
      clip = 1;
    } else {
      clip = 0;
    }
    boolean signLike = scheme.kind() != QuantScheme.Kind.INTEGER;
    Nibbles nibbles = scheme.bits() == 4 ? new Nibbles() : null;
    ErrorStats stats = new ErrorStats();
    if (!gather) {
      data.begin();
    }
    float[] buf = new float[0];
    double clipSum = 0;
    for (Piece p : pieces) {
      int extra = mode == Mode.INJECT ? 2 * rangeRow(layout) : 0;
      if (buf.length < p.count() + extra) {
        buf = new float[p.count() + extra];
      }
      src.read(p.start(), buf, 0, p.count());
      byte[] codes;
      float[] pScales;
      int[] pZeros;
      if (mode == Mode.WHOLE) {
        codes = Arrays.copyOfRange(all, (int) p.start(), (int) p.start() + p.count());
        pScales = Arrays.copyOfRange(scales, p.paramStart(), p.paramStart() + p.paramCount());
        pZeros = Arrays.copyOfRange(zeroPoints, p.paramStart(), p.paramStart() + p.paramCount());
      } else if (mode == Mode.INJECT) {
        appendRange(buf, p.count(), layout);
        codes = new byte[p.count() + extra];
        pScales = new float[params];
        pZeros = new int[params];
        LinearQuantizer.quantize(MemorySegment.ofArray(buf), injected(p, layout), scheme, false, codes, pScales,
            pZeros);
        if (!Arrays.equals(pScales, scales) || !Arrays.equals(pZeros, zeroPoints)) {
          throw new IllegalStateException("tensor '" + info.name()
              + "': a piece's parameters differ from the range pass");
        }
        codes = Arrays.copyOf(codes, p.count());
        if (all != null) {
          System.arraycopy(codes, 0, all, (int) p.start(), p.count());
        }
      } else {
        requireFinite(info.name(), buf, p.count(), src);
        codes = new byte[p.count()];
        pScales = new float[p.paramCount()];
        pZeros = new int[p.paramCount()];
        double c = LinearQuantizer.quantize(MemorySegment.ofArray(buf), p.layout(), scheme, mse, codes, pScales,
            pZeros);
        // LinearQuantizer averages the clip ratio over parameter sets; so does this, over pieces.
        clipSum += signLike && Double.isNaN(c) ? 0 : c * p.paramCount();
        System.arraycopy(pScales, 0, scales, p.paramStart(), p.paramCount());
        System.arraycopy(pZeros, 0, zeroPoints, p.paramStart(), p.paramCount());
        if (all != null) {
          System.arraycopy(codes, 0, all, (int) p.start(), p.count());
        }
      }
      float[] decoded = LinearQuantizer.dequantize(new LinearQuantizer.Result(codes, pScales, pZeros, 0), p.layout(),
          scheme);
      for (int i = 0; i < p.count(); i++) {
        stats.add(buf[i], decoded[i]);
      }
      if (!gather) {
        if (nibbles != null) {
          nibbles.write(codes, data);
        } else {
          data.write(ByteBuffer.wrap(codes));
        }
      }
    }
    if (mode == Mode.OWN) {
      clip = scheme.kind() == QuantScheme.Kind.BINARY ? Double.NaN : clipSum / Math.max(1, params);
    }
    LinearQuantizer.Result q = new LinearQuantizer.Result(all == null ? new byte[0] : all, scales, zeroPoints, clip);
    WeightEncoder.Emitted e = switch (encoding) {
      case DEQUANTIZE_LINEAR -> {
        if (nibbles != null) {
          nibbles.flush(data);
        }
        TensorProto codes = data.end(TensorProto.newBuilder().setName(name)
            .setDataType(codeType(scheme).getNumber()).addAllDims(info.shape()).build());
        // Codes stream to the file: the encoder emits scales, zero points, the node and an empty codes tensor.
        WeightEncoder.Emitted dq = encoder.dequantizeLinear(name, layout, scheme,
            new LinearQuantizer.Result(new byte[0], scales, zeroPoints, clip));
        yield new WeightEncoder.Emitted(withStreamedFirst(dq, codes), dq.decoders(), 0, dq.encoding(), null);
      }
      case MATMUL_NBITS -> encoder.matMulNBits(name, layout, scheme, q);
      case UNPACK -> encoder.unpack(name, layout, scheme, q);
      case CAST -> throw new IllegalStateException("integer codes are never cast");
    };
    if (half) {
      e = encoder.toHalf(name, e);
    }
    List<TensorProto> inits = externalize(e.initializers());
    long bytes = bytes(inits);
    String range = scheme.kind() == QuantScheme.Kind.BINARY ? "closed-form"
        : spec.range().name().toLowerCase(Locale.ROOT);
    TensorReport report = new TensorReport(info.name(), info.shape(), n, (half ? 2L : 4L) * n, bytes,
        stats.sparsityBefore(), stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), spec.bits(),
        spec.granularity().name(), spec.granularity() == Granularity.GROUP ? spec.groupSize() : null, scheme.label(),
        range, Double.isNaN(clip) ? null : clip, e.encoding().label(), 8.0 * bytes / Math.max(1, n));
    return new Done(inits, e.decoders(), e.matMulRewrite(), report);
  }

  private static TensorProto.DataType codeType(QuantScheme s) {
    if (s.bits() == 4) {
      return s.signed() ? TensorProto.DataType.INT4 : TensorProto.DataType.UINT4;
    }
    return s.signed() ? TensorProto.DataType.INT8 : TensorProto.DataType.UINT8;
  }

  /** The layout the in-memory path gives the weight. */
  private QuantLayout layout(TensorInfo info, String name, long[] dims) {
    return WeightOnlyQuantization.layout(info, name, dims, spec, axes);
  }

  /**
   * The encoding the in-memory path chooses (WeightOnlyQuantization.encode): MatMulNBits where the
   * spec asks for it or DequantizeLinear cannot hold the codes, else DequantizeLinear, else unpack.
   * {@code ExternalDataQuantizerTest} pins the two paths to the same output.
   */
  private WeightEncoder.Encoding encoding(String name, QuantLayout layout, QuantScheme scheme, boolean half) {
    boolean nbits = !half && spec.format() != QuantizeSpec.Format.QDQ && WeightEncoder.matMulNBitsFits(scheme, layout)
        && axes.onlyMatMulWeight(name);
    boolean dq = encoder.dequantizeLinearFits(scheme, layout);
    if (nbits && (spec.format() == QuantizeSpec.Format.MATMULNBITS || !dq
        || WeightOnlyQuantization.AUTO_PREFERS_MATMULNBITS)) {
      return WeightEncoder.Encoding.MATMUL_NBITS;
    }
    if (dq) {
      return WeightEncoder.Encoding.DEQUANTIZE_LINEAR;
    }
    long needed = WeightEncoder.unpackMinOpset(scheme);
    if (opset < needed) {
      throw new CompressionException("tensor '" + name + "': " + scheme.label() + " weights need ai.onnx opset "
          + needed + " or later to be unpacked; the model imports opset " + opset);
    }
    return WeightEncoder.Encoding.UNPACK;
  }

  // ---- pieces ----------------------------------------------------------------------------

  /** The tensor cut into pieces of about pieceElements along its outermost direction (see the class doc). */
  private List<Piece> pieces(QuantLayout l) {
    List<Piece> out = new ArrayList<>();
    int outer = l.outer();
    int extent = l.extent();
    int inner = l.inner();
    switch (l.mode()) {
      case TENSOR -> {
        for (long at = 0; at < l.size(); at += pieceElements) {
          int len = (int) Math.min(pieceElements, l.size() - at);
          out.add(new Piece(at, len, QuantLayout.perTensor(len), 0, 1));
        }
      }
      case CHANNEL -> {
        if (outer > 1) {
          long row = (long) extent * inner;
          int rows = (int) Math.max(1, pieceElements / row);
          for (int o = 0; o < outer; o += rows) {
            int u = Math.min(rows, outer - o);
            out.add(new Piece(o * row, (int) (u * row), QuantLayout.perChannel(new long[] {u, extent, inner}, 1), 0,
                extent));
          }
        } else {
          int channels = Math.max(1, pieceElements / inner);
          for (int c = 0; c < extent; c += channels) {
            int u = Math.min(channels, extent - c);
            out.add(new Piece((long) c * inner, u * inner, QuantLayout.perChannel(new long[] {u, inner}, 0), c, u));
          }
        }
      }
      case GROUP -> {
        int g = l.groupSize();
        int blocks = l.blocks();
        if (outer > 1) {
          long row = (long) extent * inner;
          int rows = (int) Math.max(1, pieceElements / row);
          for (int o = 0; o < outer; o += rows) {
            int u = Math.min(rows, outer - o);
            out.add(new Piece(o * row, (int) (u * row), QuantLayout.perGroup(new long[] {u, extent, inner}, 1, g),
                o * blocks * inner, u * blocks * inner));
          }
        } else {
          int perPiece = Math.max(1, pieceElements / (g * inner));
          for (int b = 0; b < blocks; b += perPiece) {
            int nb = Math.min(perPiece, blocks - b);
            int d = b * g;
            int len = Math.min(nb * g, extent - d);
            out.add(new Piece((long) d * inner, len * inner, QuantLayout.perGroup(new long[] {len, inner}, 0, g),
                b * inner, nb * inner));
          }
        }
      }
    }
    return out;
  }

  /** Elements of one appended range row: one per tensor, a channel row for shared channel pieces. */
  private static int rangeRow(QuantLayout l) {
    return l.mode() == QuantLayout.Mode.TENSOR ? 1 : l.extent() * l.inner();
  }

  /** The piece's layout with the two range rows appended. */
  private static QuantLayout injected(Piece p, QuantLayout l) {
    if (l.mode() == QuantLayout.Mode.TENSOR) {
      return QuantLayout.perTensor(p.count() + 2);
    }
    long rows = p.count() / ((long) l.extent() * l.inner());
    return QuantLayout.perChannel(new long[] {rows + 2, l.extent(), l.inner()}, 1);
  }

  /**
   * Pass 1 of shared pieces: each set's [min(w, 0), max(w, 0)] over the whole tensor into {@link
   * #lo}/{@link #hi}, then the parameters LinearQuantizer chooses for the two range rows alone into
   * {@code scales}/{@code zeroPoints}: every piece, range rows appended, must reproduce them.
   */
  private void ranges(String tensor, Source src, QuantLayout l, List<Piece> pieces, float[] scales, int[] zeroPoints,
      QuantScheme scheme) {
    int params = l.params();
    lo = new float[params];
    hi = new float[params];
    float[] buf = new float[0];
    long bad = 0;
    int inner = l.inner();
    int extent = l.extent();
    boolean tensorWide = l.mode() == QuantLayout.Mode.TENSOR;
    for (Piece p : pieces) {
      if (buf.length < p.count()) {
        buf = new float[p.count()];
      }
      src.read(p.start(), buf, 0, p.count());
      // Pieces start on whole rows of [extent, inner], so the channel follows from the piece offset.
      for (int i = 0; i < p.count(); i++) {
        float v = buf[i];
        bad += (Float.floatToRawIntBits(v) & 0x7f800000) == 0x7f800000 ? 1 : 0;
        int c = tensorWide ? 0 : (i / inner) % extent;
        lo[c] = Math.min(lo[c], v);
        hi[c] = Math.max(hi[c], v);
      }
    }
    if (bad > 0) {
      throw nonFinite(tensor, bad);
    }
    float[] rows = new float[2 * rangeRow(l)];
    appendRange(rows, 0, l);
    QuantLayout onlyRange = tensorWide ? QuantLayout.perTensor(2)
        : QuantLayout.perChannel(new long[] {2, extent, inner}, 1);
    LinearQuantizer.quantize(MemorySegment.ofArray(rows), onlyRange, scheme, false, new byte[rows.length], scales,
        zeroPoints);
  }

  /** Per-set range of the tensor being quantized with shared pieces (pass 1). */
  private float[] lo;
  private float[] hi;

  /** Writes the lo row then the hi row at {@code at}. */
  private void appendRange(float[] buf, int at, QuantLayout l) {
    if (l.mode() == QuantLayout.Mode.TENSOR) {
      buf[at] = lo[0];
      buf[at + 1] = hi[0];
      return;
    }
    int inner = l.inner();
    int row = rangeRow(l);
    for (int c = 0; c < l.extent(); c++) {
      Arrays.fill(buf, at + c * inner, at + (c + 1) * inner, lo[c]);
      Arrays.fill(buf, at + row + c * inner, at + row + (c + 1) * inner, hi[c]);
    }
  }

  // ---- helpers ---------------------------------------------------------------------------

  /** 4-bit codes packed two per byte (element 0 low) across piece boundaries, as WeightEncoder.pack does. */
  private static final class Nibbles {
    private int pending = -1;

    void write(byte[] codes, ExternalDataWriter data) throws IOException {
      int carry = pending >= 0 ? 1 : 0;
      byte[] joined = new byte[carry + codes.length];
      if (carry == 1) {
        joined[0] = (byte) pending;
      }
      System.arraycopy(codes, 0, joined, carry, codes.length);
      int even = joined.length & ~1;
      pending = even < joined.length ? joined[even] : -1;
      if (even > 0) {
        data.write(ByteBuffer.wrap(WeightEncoder.pack(Arrays.copyOf(joined, even), 4)));
      }
    }

    void flush(ExternalDataWriter data) throws IOException {
      if (pending >= 0) {
        data.write(ByteBuffer.wrap(WeightEncoder.pack(new byte[] {(byte) pending}, 4)));
        pending = -1;
      }
    }
  }

  /** The emitted initializers with the first (the codes, emitted empty) replaced by the streamed tensor. */
  private List<TensorProto> withStreamedFirst(WeightEncoder.Emitted e, TensorProto streamed) throws IOException {
    TensorProto first = e.initializers().getFirst();
    if (first.getRawData().size() != 0 || first.getDataType() != streamed.getDataType()) {
      throw new IllegalStateException("the encoder's first initializer '" + first.getName() + "' is not the codes");
    }
    List<TensorProto> out = new ArrayList<>();
    out.add(streamed.toBuilder().setName(first.getName()).build());
    out.addAll(externalize(e.initializers().subList(1, e.initializers().size())));
    return out;
  }

  /** Initializers of at least EXTERNAL_MIN_BYTES moved to the data file; already external ones kept. */
  private List<TensorProto> externalize(List<TensorProto> inits) throws IOException {
    List<TensorProto> out = new ArrayList<>(inits.size());
    for (TensorProto t : inits) {
      if (!OnnxExternalData.isExternal(t) && t.getRawData().size() >= EXTERNAL_MIN_BYTES) {
        out.add(data.copy(t, MemorySegment.ofBuffer(t.getRawData().asReadOnlyByteBuffer())));
      } else {
        out.add(t);
      }
    }
    return out;
  }

  private static long bytes(List<TensorProto> inits) {
    long b = 0;
    for (TensorProto t : inits) {
      b += OnnxExternalData.isExternal(t) ? OnnxExternalData.ref(t).length() : t.getRawData().size();
    }
    return b;
  }

  private static float[] readAll(Source src) {
    float[] w = new float[Math.toIntExact(src.elements())];
    src.read(0, w, 0, w.length);
    return w;
  }

  /** Throws with the tensor's total count of NaN/infinite values if this piece holds any. */
  private static void requireFinite(String tensor, float[] buf, int n, Source src) {
    for (int i = 0; i < n; i++) {
      if ((Float.floatToRawIntBits(buf[i]) & 0x7f800000) == 0x7f800000) {
        requireFiniteWhole(tensor, src);
      }
    }
  }

  private static void requireFiniteWhole(String tensor, Source src) {
    float[] buf = new float[(int) Math.min(PIECE_ELEMENTS, Math.max(1, src.elements()))];
    long bad = 0;
    for (long at = 0; at < src.elements(); at += buf.length) {
      int len = (int) Math.min(buf.length, src.elements() - at);
      src.read(at, buf, 0, len);
      for (int i = 0; i < len; i++) {
        bad += (Float.floatToRawIntBits(buf[i]) & 0x7f800000) == 0x7f800000 ? 1 : 0;
      }
    }
    if (bad > 0) {
      throw nonFinite(tensor, bad);
    }
  }

  private static CompressionException nonFinite(String tensor, long bad) {
    // The in-memory path's message (MagnitudePruner.requireFinite).
    return new CompressionException("tensor '" + tensor + "' contains " + bad + " NaN or infinite value"
        + (bad == 1 ? "" : "s") + "; it cannot be compressed");
  }
}
