package dev.modelpress.compression.quantize;

/**
 * The code grid of a quantized weight: which integers codes take and what zero point a symmetric
 * grid uses. Dequantization is always {@code (q - zeroPoint) * scale}.
 *
 * <ul>
 *   <li>{@code INTEGER}, signed, symmetric: q in [-(2^(b-1) - 1), 2^(b-1) - 1], zero point 0 (the most
 *       negative code is unused so that negation stays exact, as int8 kernels expect).
 *   <li>{@code INTEGER}, signed, asymmetric: q in [-2^(b-1), 2^(b-1) - 1] with a zero point.
 *   <li>unsigned: the same grids shifted by 2^(b-1), so symmetric unsigned has zero point 2^(b-1)
 *       (ONNX Runtime's MatMulNBits default) and codes [1, 2^b - 1].
 *   <li>{@code BINARY} (1 bit): q in {-1, +1}, zero point 0, w ≈ sign(w) · scale.
 *   <li>{@code TERNARY} (2 bits): q in {-1, 0, +1}, zero point 0.
 * </ul>
 *
 * @param bits code width: 1 for binary, 2 for ternary, else 2, 4 or 8
 */
public record QuantScheme(int bits, Kind kind, boolean signed, boolean symmetric) {

  /** The grid family. */
  public enum Kind {
    INTEGER,
    BINARY,
    TERNARY
  }

  public QuantScheme {
    if (kind == Kind.INTEGER && bits != 2 && bits != 4 && bits != 8) {
      throw new IllegalArgumentException("integer codes are 2, 4 or 8 bits, not " + bits);
    }
    if (kind == Kind.BINARY && bits != 1 || kind == Kind.TERNARY && bits != 2) {
      throw new IllegalArgumentException(kind + " codes cannot be " + bits + " bits");
    }
    if (kind != Kind.INTEGER && !symmetric) {
      throw new IllegalArgumentException(kind + " grids are symmetric");
    }
  }

  /** A signed or unsigned integer grid. */
  public static QuantScheme integer(int bits, boolean signed, boolean symmetric) {
    return new QuantScheme(bits, Kind.INTEGER, signed, symmetric);
  }

  /** Sign × scale. */
  public static QuantScheme binary() {
    return new QuantScheme(1, Kind.BINARY, true, true);
  }

  /** {-1, 0, +1} × scale. */
  public static QuantScheme ternary() {
    return new QuantScheme(2, Kind.TERNARY, true, true);
  }

  /** Offset between the signed grid and the stored one: 0 when signed, 2^(b-1) when unsigned. */
  public int offset() {
    return signed || kind != Kind.INTEGER ? 0 : 1 << (bits - 1);
  }

  /** Smallest code. */
  public int qmin() {
    return switch (kind) {
      case BINARY, TERNARY -> -1;
      case INTEGER -> (symmetric ? -(1 << (bits - 1)) + 1 : -(1 << (bits - 1))) + offset();
    };
  }

  /** Largest code. */
  public int qmax() {
    return switch (kind) {
      case BINARY, TERNARY -> 1;
      case INTEGER -> (1 << (bits - 1)) - 1 + offset();
    };
  }

  /** The zero point of a symmetric grid. */
  public int symmetricZeroPoint() {
    return offset();
  }

  /**
   * How many levels the grid has between its extreme codes, per side for symmetric grids: the
   * divisor that turns a range into a scale.
   */
  double levels() {
    return symmetric ? (qmax() - qmin()) / 2.0 : qmax() - qmin();
  }

  /** A short name: {@code int4}, {@code uint8}, {@code binary}, {@code ternary}. */
  public String label() {
    return switch (kind) {
      case BINARY -> "binary";
      case TERNARY -> "ternary";
      case INTEGER -> (signed ? "int" : "uint") + bits;
    };
  }
}
