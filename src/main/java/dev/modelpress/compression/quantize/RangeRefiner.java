package dev.modelpress.compression.quantize;

/**
 * Data-free refinement of the scale and zero point of each parameter set of an integer grid,
 * starting from the min/max or MSE-searched parameters of {@link LinearQuantizer}.
 *
 * <p><b>{@link Method#LSQ}</b> alternates the two halves of a least-squares fit: codes q =
 * clamp(rint(w/s + z)) for the current (s, z); then (s, z) as the linear least-squares fit w ≈ s·q −
 * s·z for those codes (the regression slope and intercept; symmetric grids keep their zero point and
 * refit s alone). It starts from the MSE-searched range and stops when the squared error stops
 * falling, keeping the best seen, so it is never worse than MSE in L2.
 *
 * <p><b>{@link Method#HQQ}</b> (Badri &amp; Shaji 2023, half-quadratic quantization) minimises the
 * l<sub>p</sub> norm (p = {@value #P}) of the reconstruction error, which cares less about a few
 * large errors (clipped outliers) than L2 does, by splitting it: an outlier term e = shrink(r, β)
 * of the residual r = w − s·(q − z) (the generalised soft threshold sign(r)·max(|r| − |r|^(p−1)/β,
 * 0) of the l<sub>p</sub> proximal step), then the (s, z) that fit w − e in least squares; β grows
 * by κ each round. The residual is measured in units of the step (r/s), so β does not depend on the
 * weights' magnitude. It starts from min/max, as the paper does, stops when the l<sub>p</sub> error
 * stops falling and keeps the best seen.
 *
 * <p><b>Fractional zero points.</b> For asymmetric grids both return the zero point as a float
 * ({@link LinearQuantizer.Result#fractionalZeroPoints()}): w ≈ s·(q − z) with any real z is an
 * affine grid (a scale and an offset per set). Measured on all-MiniLM-L6-v2 (int4 groups of 32) this
 * is what matters: rounding z inside the loop leaves both methods at the MSE range's output error.
 * Only some encodings can hold such a zero point (MatMulNBits' float zero points and the unpack
 * subgraph, not DequantizeLinear), see {@code docs/quantization.md}.
 *
 * <p>Both work on any layout (per tensor, channel or group, strided or not): the elements of each
 * set are gathered into one contiguous buffer first. Deterministic: no randomness, one thread.
 */
public final class RangeRefiner {

  /** The refinement. */
  public enum Method {
    /** Alternating least squares on (codes) and (scale, zero point): minimises L2. */
    LSQ,
    /** Half-quadratic splitting on the l_p error (p &lt; 1). */
    HQQ
  }

  /** The l_p exponent HQQ minimises (the paper's choice for 4-bit weights). */
  public static final double P = 0.7;

  /** Most rounds of either loop. */
  static final int ITERATIONS = 20;

  /** HQQ's first β (in step units) and its growth per round. */
  static final double BETA = 10;

  static final double KAPPA = 1.01;

  private RangeRefiner() {}

  /**
   * How to refine: {@code integerZero} rounds the zero point inside the loop (what the encodings
   * store), {@code fitScale} refits the scale by least squares (else only the zero point moves),
   * {@code fromMse} starts from the MSE-searched range instead of min/max, {@code beta} is HQQ's
   * first β in step units.
   */
  record Config(Method method, boolean integerZero, boolean fitScale, boolean fromMse, double beta) {

    /** The configuration {@link #quantize} uses for {@code method}. */
    static Config of(Method method) {
      // The variants measured best on all-MiniLM-L6-v2 (docs/quantization.md): fractional zero
      // points and a refitted scale; LSQ from the MSE range, HQQ from min/max as in the paper.
      return new Config(method, false, true, method == Method.LSQ, BETA);
    }
  }

  /** Refined parameters with a possibly fractional zero point per set, and the codes. */
  record Refined(byte[] codes, float[] scales, double[] zeroPoints, double clipRatio) {}

  /**
   * Quantizes {@code w} laid out as {@code layout} on an integer grid with refined parameters.
   * {@code clipRatio} of the result is the mean over sets of the refined scale over the min/max
   * scale (below 1 where the range was narrowed).
   */
  public static LinearQuantizer.Result quantize(float[] w, QuantLayout layout, QuantScheme scheme, Method method) {
    if (scheme.kind() != QuantScheme.Kind.INTEGER) {
      throw new IllegalArgumentException("range refinement needs an integer grid, not " + scheme.kind());
    }
    Refined r = refine(w, layout, scheme, Config.of(method));
    int params = r.zeroPoints().length;
    int[] zps = new int[params];
    float[] fractional = scheme.symmetric() ? null : new float[params];
    for (int p = 0; p < params; p++) {
      // Stored as float; the integer one (nearest, in range) pads blocks and stands in where an
      // encoder needs an integer.
      float z = (float) r.zeroPoints()[p];
      zps[p] = (int) Math.max(scheme.qmin(), Math.min(scheme.qmax(), Math.rint(z)));
      if (fractional != null) {
        fractional[p] = z;
      }
    }
    return new LinearQuantizer.Result(r.codes(), r.scales(), zps, r.clipRatio(), fractional);
  }

  /** The refinement {@code config} describes, on an integer grid. */
  static Refined refine(float[] w, QuantLayout layout, QuantScheme scheme, Config config) {
    LinearQuantizer.Result minmax = LinearQuantizer.quantize(w, layout, scheme, false);
    // LSQ minimises L2, so it starts from the L2-best shrink; HQQ from the paper's min/max range.
    LinearQuantizer.Result start = config.fromMse() ? LinearQuantizer.quantize(w, layout, scheme, true) : minmax;
    int params = layout.params();
    int[] offsets = new int[params + 1];
    int[] members = members(layout, offsets);
    float[] x = new float[w.length];
    for (int i = 0; i < members.length; i++) {
      x[i] = w[members[i]];
    }
    float[] scales = start.scales().clone();
    double[] zps = new double[params];
    for (int p = 0; p < params; p++) {
      zps[p] = start.zeroPoints()[p];
    }
    double[] sz = new double[2];
    double ratio = 0;
    for (int p = 0; p < params; p++) {
      int from = offsets[p];
      int m = offsets[p + 1] - from;
      sz[0] = scales[p];
      sz[1] = zps[p];
      if (m > 0 && !degenerate(x, from, m)) {
        if (config.method() == Method.LSQ) {
          lsq(x, from, m, scheme, config, sz);
        } else {
          hqq(x, from, m, scheme, config, sz);
        }
      }
      scales[p] = (float) sz[0];
      // The zero point as stored (float), so the codes below are the nearest for what is decoded.
      zps[p] = (float) sz[1];
      ratio += sz[0] / minmax.scales()[p];
    }
    byte[] codes = new byte[w.length];
    for (int p = 0; p < params; p++) {
      float inv = 1f / scales[p];
      for (int i = offsets[p]; i < offsets[p + 1]; i++) {
        codes[members[i]] = (byte) code(x[i], inv, zps[p], scheme);
      }
    }
    return new Refined(codes, scales, zps, params == 0 ? 1 : ratio / params);
  }

  /** Element indices grouped by parameter set (a counting sort on {@link QuantLayout#paramOf}). */
  static int[] members(QuantLayout layout, int[] offsets) {
    int n = layout.size();
    int params = layout.params();
    int[] param = new int[n];
    for (int e = 0; e < n; e++) {
      param[e] = layout.paramOf(e);
      offsets[param[e] + 1]++;
    }
    for (int p = 0; p < params; p++) {
      offsets[p + 1] += offsets[p];
    }
    int[] next = java.util.Arrays.copyOf(offsets, params);
    int[] members = new int[n];
    for (int e = 0; e < n; e++) {
      members[next[param[e]]++] = e;
    }
    return members;
  }

  /** All-zero sets (and those below float resolution) keep their start: any scale decodes 0 to 0. */
  private static boolean degenerate(float[] x, int from, int m) {
    float max = 0;
    for (int i = from; i < from + m; i++) {
      max = Math.max(max, Math.abs(x[i]));
    }
    return !(max > Float.MIN_NORMAL) || Float.isInfinite(max);
  }

  static int code(double x, double inv, double zp, QuantScheme s) {
    return (int) Math.max(s.qmin(), Math.min(s.qmax(), Math.rint(x * inv + zp)));
  }

  // ---- least squares -----------------------------------------------------------------------

  /** Alternating least squares from sz = {scale, zero point}; leaves the best in sz. */
  static void lsq(float[] x, int from, int m, QuantScheme s, Config c, double[] sz) {
    double best = error(x, from, m, s, sz[0], sz[1], 2);
    double[] next = new double[2];
    for (int it = 0; it < ITERATIONS; it++) {
      if (!fit(x, null, from, m, s, c, sz[0], sz[1], next)) {
        return;
      }
      double err = error(x, from, m, s, next[0], next[1], 2);
      if (!(err < best)) {
        return;
      }
      best = err;
      sz[0] = next[0];
      sz[1] = next[1];
    }
  }

  /**
   * Least-squares (s, z) for target − outlier ≈ s·(q − z) with the codes q of (scale, zp); into
   * out. Returns false when the codes do not determine them (all equal) or the fit is not a
   * positive finite scale.
   */
  private static boolean fit(float[] x, double[] outlier, int from, int m, QuantScheme s, Config c, double scale,
      double zp, double[] out) {
    double inv = 1 / scale;
    double sy = 0;
    double sq = 0;
    double sqq = 0;
    double syq = 0;
    for (int i = 0; i < m; i++) {
      double y = outlier == null ? x[from + i] : x[from + i] - outlier[i];
      int q = code(x[from + i], inv, zp, s);
      sy += y;
      sq += q;
      sqq += (double) q * q;
      syq += y * q;
    }
    double z;
    if (s.symmetric()) {
      z = s.symmetricZeroPoint();
    } else if (!c.fitScale()) {
      // HQQ's zero-point step: z = mean(q − y/s) for the fixed scale.
      z = (sq - sy / scale) / m;
    } else {
      double varq = m * sqq - sq * sq;
      if (!(varq > 0)) {
        return false;
      }
      double slope = (m * syq - sy * sq) / varq;
      double intercept = (sy - slope * sq) / m;
      if (!(slope > 0)) {
        return false;
      }
      z = -intercept / slope;
    }
    if (c.integerZero()) {
      z = Math.rint(z);
    }
    z = Math.max(s.qmin(), Math.min(s.qmax(), z));
    if (!c.fitScale()) {
      out[0] = scale;
      out[1] = z;
      return !s.symmetric();
    }
    // Given z: s = <y, q − z> / <q − z, q − z>, expanded over the sums above.
    double num = syq - z * sy;
    double den = sqq - 2 * z * sq + m * z * z;
    double sc = (float) (num / den);
    if (!(den > 0) || !(sc > 0) || Double.isInfinite(sc) || Float.isInfinite(1f / (float) sc)) {
      return false;
    }
    out[0] = sc;
    out[1] = z;
    return true;
  }

  /** Σ |w − s·(q − z)|^p over the set, with q the codes of (s, z) and the scale as float. */
  static double error(float[] x, int from, int m, QuantScheme s, double scale, double zp, double p) {
    float sc = (float) scale;
    double inv = 1f / sc;
    double sum = 0;
    for (int i = from; i < from + m; i++) {
      int q = code(x[i], inv, zp, s);
      double r = Math.abs(x[i] - (float) ((q - zp) * sc));
      sum += p == 2 ? r * r : Math.pow(r, p);
    }
    return sum;
  }

  // ---- half-quadratic ----------------------------------------------------------------------

  /** HQQ from sz = {scale, zero point}; leaves the best seen (by the l_p error) in sz. */
  static void hqq(float[] x, int from, int m, QuantScheme s, Config c, double[] sz) {
    double best = error(x, from, m, s, sz[0], sz[1], P);
    double scale = sz[0];
    double zp = sz[1];
    double beta = c.beta();
    double[] outlier = new double[m];
    double[] next = new double[2];
    for (int it = 0; it < ITERATIONS; it++) {
      double inv = 1 / scale;
      for (int i = 0; i < m; i++) {
        int q = code(x[from + i], inv, zp, s);
        double u = (x[from + i] - (q - zp) * scale) / scale;
        outlier[i] = shrink(u, beta) * scale;
      }
      if (!fit(x, outlier, from, m, s, c, scale, zp, next)) {
        return;
      }
      scale = next[0];
      zp = next[1];
      beta *= KAPPA;
      double err = error(x, from, m, s, scale, zp, P);
      if (!(err < best)) {
        return;
      }
      best = err;
      sz[0] = scale;
      sz[1] = zp;
    }
  }

  /** The l_p proximal step's generalised soft threshold: sign(u)·max(|u| − |u|^(p−1)/β, 0). */
  static double shrink(double u, double beta) {
    double a = Math.abs(u);
    if (a == 0) {
      return 0;
    }
    return Math.signum(u) * Math.max(a - Math.pow(a, P - 1) / beta, 0);
  }
}
