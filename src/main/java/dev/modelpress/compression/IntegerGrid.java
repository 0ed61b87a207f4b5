package dev.modelpress.compression;

/**
 * A signed b-bit integer grid (2 ≤ b ≤ 8) and round-to-nearest onto it, per tensor or per channel:
 * the reference that GPTQ and mixed precision compare with and start from. Codes are stored one per
 * byte (an int4 code in an int8 container), so a model using them runs through the same
 * {@link QdqWriter} path as int8 weights; packing sub-byte codes belongs to the weight-only
 * quantizer.
 *
 * <p>Symmetric: scale = max|w| / (2^(b−1) − 1), codes in [−(2^(b−1) − 1), 2^(b−1) − 1], zero point 0.
 * Asymmetric: [min(w, 0), max(w, 0)] maps onto [−2^(b−1), 2^(b−1) − 1] with a zero point, so 0 stays
 * exact. For b = 8 this is exactly {@link WeightQuantizer}'s grid.
 */
record IntegerGrid(int bits, boolean symmetric) {

  IntegerGrid {
    if (bits < 2 || bits > 8) {
      throw new IllegalArgumentException("bits must be 2..8, was " + bits);
    }
  }

  int qmax() {
    return (1 << (bits - 1)) - 1;
  }

  int qmin() {
    return symmetric ? -qmax() : -(1 << (bits - 1));
  }

  /** Scale for values in [lo, hi]; 1 when the range is empty (every code then decodes to 0). */
  float scale(double lo, double hi) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
    double s = symmetric ? Math.max(-lo, hi) / qmax() : (hi - lo) / ((1 << bits) - 1);
    float f = (float) s;
    return f > 0 && !Float.isInfinite(f) ? f : 1f;
  }

  int zeroPoint(double lo, float scale) {
    return symmetric ? 0 : clamp(Math.rint(qmin() - Math.min(lo, 0) / scale), qmin(), qmax());
  }

  int code(double w, float scale, int zeroPoint) {
    return clamp(Math.rint(w / scale) + zeroPoint, qmin(), qmax());
  }

  static float decode(int code, float scale, int zeroPoint) {
    return (code - zeroPoint) * scale;
  }

  /** Round-to-nearest of {@code w} per tensor ({@code axis = -1}) or per slice along {@code axis}. */
  WeightQuantizer.Quantized roundToNearest(float[] w, long[] shape, int axis) {
    Layout l = Layout.of(shape, axis, w.length);
    double[] lo = new double[l.channels];
    double[] hi = new double[l.channels];
    for (int o = 0, i = 0; o < l.outer; o++) {
      for (int c = 0; c < l.channels; c++) {
        for (int j = 0; j < l.inner; j++, i++) {
          lo[c] = Math.min(lo[c], w[i]);
          hi[c] = Math.max(hi[c], w[i]);
        }
      }
    }
    float[] scales = new float[l.channels];
    byte[] zeros = new byte[l.channels];
    for (int c = 0; c < l.channels; c++) {
      scales[c] = scale(lo[c], hi[c]);
      zeros[c] = (byte) zeroPoint(lo[c], scales[c]);
    }
    byte[] codes = new byte[w.length];
    for (int o = 0, i = 0; o < l.outer; o++) {
      for (int c = 0; c < l.channels; c++) {
        for (int j = 0; j < l.inner; j++, i++) {
          codes[i] = (byte) code(w[i], scales[c], zeros[c]);
        }
      }
    }
    return new WeightQuantizer.Quantized(codes, scales, zeros, axis);
  }

  /** The values a quantized tensor decodes to. */
  static float[] dequantize(WeightQuantizer.Quantized q, long[] shape) {
    Layout l = Layout.of(shape, q.axis(), q.codes().length);
    float[] out = new float[q.codes().length];
    for (int o = 0, i = 0; o < l.outer; o++) {
      for (int c = 0; c < l.channels; c++) {
        float s = q.scales()[c];
        int z = q.zeroPoints()[c];
        for (int j = 0; j < l.inner; j++, i++) {
          out[i] = decode(q.codes()[i], s, z);
        }
      }
    }
    return out;
  }

  /** A tensor seen as [outer, channels, inner] around its channel axis. */
  private record Layout(int outer, int channels, int inner) {
    static Layout of(long[] shape, int axis, int length) {
      if (axis < 0) {
        return new Layout(length == 0 ? 0 : 1, 1, length);
      }
      int channels = Math.toIntExact(shape[axis]);
      long inner = 1;
      for (int d = axis + 1; d < shape.length; d++) {
        inner *= shape[d];
      }
      int outer = channels == 0 || inner == 0 ? 0 : (int) (length / (channels * inner));
      return new Layout(outer, channels, Math.toIntExact(inner));
    }
  }

  private static int clamp(double v, int min, int max) {
    return (int) Math.max(min, Math.min(max, v));
  }
}
