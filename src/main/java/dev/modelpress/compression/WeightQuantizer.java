package dev.modelpress.compression;

/**
 * Weight-only int8 quantization kernels over {@code float[]}.
 *
 * <p>Symmetric: scale = max|w| / 127, zero point 0, codes in [-127, 127] (so -128 is never used
 * and negation stays exact). Asymmetric: the range [min(w, 0), max(w, 0)] is mapped onto [-128,
 * 127] with an int8 zero point; including 0 in the range makes 0 exactly representable, so pruned
 * zeros survive quantization exactly. Dequantization is (q - zp) * scale in float, as ONNX's
 * DequantizeLinear computes it.
 */
final class WeightQuantizer {

  private WeightQuantizer() {}

  /**
   * Codes, scales and zero points for one tensor.
   *
   * @param axis the channel axis, or -1 for one scale for the whole tensor
   */
  record Quantized(byte[] codes, float[] scales, byte[] zeroPoints, int axis) {}

  /**
   * Quantizes {@code w} of the given shape per tensor ({@code axis = -1}) or per slice along
   * {@code axis}, and adds every element's dequantized value to {@code stats}.
   */
  static Quantized quantize(float[] w, long[] shape, int axis, boolean symmetric, ErrorStats stats) {
    int channels = axis < 0 ? 1 : Math.toIntExact(shape[axis]);
    long innerLong = 1;
    for (int d = axis + 1; axis >= 0 && d < shape.length; d++) {
      innerLong *= shape[d];
    }
    int inner = axis < 0 ? w.length : Math.toIntExact(innerLong);
    int outer = channels == 0 || inner == 0 ? 0 : w.length / (channels * inner);

    float[] lo = new float[channels];
    float[] hi = new float[channels];
    for (int o = 0, i = 0; o < outer; o++) {
      for (int c = 0; c < channels; c++) {
        float min = lo[c];
        float max = hi[c];
        for (int j = 0; j < inner; j++, i++) {
          min = Math.min(min, w[i]);
          max = Math.max(max, w[i]);
        }
        lo[c] = min;
        hi[c] = max;
      }
    }

    float[] scales = new float[channels];
    byte[] zeroPoints = new byte[channels];
    for (int c = 0; c < channels; c++) {
      double range = symmetric ? Math.max(-(double) lo[c], hi[c]) / 127.0 : ((double) hi[c] - lo[c]) / 255.0;
      float scale = (float) range;
      if (!(scale > 0) || Float.isInfinite(scale)) {
        // All-zero channel (or a range below the smallest float): any positive scale decodes 0 to 0
        // and avoids dividing by zero.
        scales[c] = 1f;
        zeroPoints[c] = 0;
        continue;
      }
      scales[c] = scale;
      zeroPoints[c] = symmetric ? 0 : (byte) clamp(Math.rint(-128.0 - lo[c] / (double) scale), -128, 127);
    }

    int qmin = symmetric ? -127 : -128;
    byte[] codes = new byte[w.length];
    for (int o = 0, i = 0; o < outer; o++) {
      for (int c = 0; c < channels; c++) {
        float scale = scales[c];
        int zp = zeroPoints[c];
        for (int j = 0; j < inner; j++, i++) {
          int q = clamp(Math.rint(w[i] / scale) + zp, qmin, 127);
          codes[i] = (byte) q;
          stats.add(w[i], (q - zp) * scale);
        }
      }
    }
    return new Quantized(codes, scales, zeroPoints, axis);
  }

  private static int clamp(double v, int min, int max) {
    return (int) Math.max(min, Math.min(max, v));
  }
}
