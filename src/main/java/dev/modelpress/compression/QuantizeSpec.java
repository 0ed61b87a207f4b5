package dev.modelpress.compression;

import java.util.List;

/**
 * Weight-only quantization: weights become low-bit integers with scales (and zero points), or
 * half-precision floats, decoded by standard ONNX operators (or ONNX Runtime's {@code MatMulNBits})
 * at run time. See {@code docs/quantization.md} for the schemes and the ONNX each one emits.
 *
 * @param bits 1, 2, 4 or 8 for integer schemes (1 = binary sign × scale, 2 with {@code TERNARY} =
 *     {-1, 0, +1} × scale); 16 for {@code FP16}/{@code BF16}
 * @param symmetric no zero point (the range is ±max|w|); false maps [min, max] with a zero point
 * @param granularity one scale per tensor, per output channel, or per group of {@code groupSize}
 *     consecutive weights along the reduction axis; {@code null} means {@code CHANNEL}
 * @param groupSize 32, 64, 128 or 256 for {@code GROUP}, else {@code null}
 * @param scheme {@code INTEGER} (uniform grid), or {@code TERNARY}; {@code null} means {@code INTEGER}
 * @param signed codes stored as signed (int8/int4) or unsigned (uint8/uint4) integers
 * @param dtype {@code INT} (integer codes), or cast weights to {@code FP16}/{@code BF16}; {@code null}
 *     means {@code INT}
 * @param range how the clipping range is chosen: raw {@code MINMAX}, the {@code MSE}-optimal
 *     shrink of it, or refined by {@code LSQ}/{@code HQQ}; {@code null} means {@code MINMAX}
 * @param format {@code AUTO} (the fastest encoding the model's opset allows), {@code QDQ} (never
 *     contrib operators), or {@code MATMULNBITS} (ONNX Runtime's 4-bit MatMul for MatMul weights);
 *     {@code null} means {@code AUTO}
 */
public record QuantizeSpec(
    int bits,
    boolean symmetric,
    Granularity granularity,
    List<String> include,
    List<String> exclude,
    Integer groupSize,
    Scheme scheme,
    boolean signed,
    WeightType dtype,
    RangeMethod range,
    Format format)
    implements StepSpec {

  /** One scale per tensor, per output channel, or per block of weights along the reduction axis. */
  public enum Granularity {
    TENSOR,
    CHANNEL,
    GROUP
  }

  /** The code grid: uniform integers, or the three levels {-1, 0, +1}. */
  public enum Scheme {
    INTEGER,
    TERNARY
  }

  /** What weights are stored as: integer codes, or IEEE half / bfloat16 floats. */
  public enum WeightType {
    INT,
    FP16,
    BF16
  }

  /**
   * How the quantization range is chosen: raw min/max, the MSE-optimal shrink, or (integer grids
   * only) a refined scale and fractional zero point per set ({@code LSQ}: alternating least squares;
   * {@code HQQ}: half-quadratic l_p fit), see {@code compression.quantize.RangeRefiner}.
   */
  public enum RangeMethod {
    MINMAX,
    MSE,
    LSQ,
    HQQ
  }

  /** Which ONNX encoding to emit. */
  public enum Format {
    AUTO,
    QDQ,
    MATMULNBITS
  }

  /** The group sizes a {@code GROUP} spec may use. */
  public static final List<Integer> GROUP_SIZES = List.of(32, 64, 128, 256);

  public QuantizeSpec {
    granularity = granularity == null ? Granularity.CHANNEL : granularity;
    include = include == null ? List.of() : List.copyOf(include);
    exclude = exclude == null ? List.of() : List.copyOf(exclude);
    scheme = scheme == null ? Scheme.INTEGER : scheme;
    dtype = dtype == null ? WeightType.INT : dtype;
    range = range == null ? RangeMethod.MINMAX : range;
    format = format == null ? Format.AUTO : format;
  }

  /** Signed integer round-to-nearest with min/max ranges: the original five-field form. */
  public QuantizeSpec(int bits, boolean symmetric, Granularity granularity, List<String> include, List<String> exclude) {
    this(bits, symmetric, granularity, include, exclude, null, null, true, null, null, null);
  }

  /** int8 quantization of the default weights. */
  public static QuantizeSpec int8(boolean symmetric, Granularity granularity) {
    return new QuantizeSpec(8, symmetric, granularity, List.of(), List.of());
  }

  /** Signed integer quantization of the default weights with the given bits, grid and range. */
  public static QuantizeSpec integer(int bits, boolean symmetric, Granularity granularity, Integer groupSize,
      RangeMethod range) {
    return new QuantizeSpec(bits, symmetric, granularity, List.of(), List.of(), groupSize, null, true, null, range, null);
  }

  /** Casts the default weights to FP16 or BF16. */
  public static QuantizeSpec cast(WeightType dtype) {
    return new QuantizeSpec(16, true, Granularity.TENSOR, List.of(), List.of(), null, null, true, dtype, null, null);
  }

  /** A copy with other include/exclude patterns. */
  public QuantizeSpec selecting(List<String> include, List<String> exclude) {
    return new QuantizeSpec(bits, symmetric, granularity, include, exclude, groupSize, scheme, signed, dtype, range,
        format);
  }

  /** A copy with another signedness, grid and encoding. */
  public QuantizeSpec with(boolean signed, Scheme scheme, Format format) {
    return new QuantizeSpec(bits, symmetric, granularity, include, exclude, groupSize, scheme, signed, dtype, range,
        format);
  }

  /** Whether the weights become integer codes (not a float cast). */
  public boolean isInteger() {
    return dtype == WeightType.INT;
  }

  @Override
  public String type() {
    return "quantize";
  }
}
