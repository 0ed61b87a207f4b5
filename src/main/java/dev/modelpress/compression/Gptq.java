package dev.modelpress.compression;

import dev.modelpress.compression.quantize.LinearQuantizer;
import dev.modelpress.compression.quantize.QuantLayout;
import dev.modelpress.compression.quantize.QuantScheme;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * GPTQ (Frantar et al., 2022) for one linear layer y = x·W with W of shape [K, N] (K inputs, N
 * outputs): quantizes W one input row at a time and spreads each row's rounding error over the
 * rows not yet quantized, weighted by the inverse Hessian of the layer's reconstruction error,
 * H = 2/n · Σ x·xᵀ over the calibration inputs. The algorithm as published; this code is ours.
 *
 * <ol>
 *   <li>Inputs that are always zero (H_ii = 0) get H_ii = 1 and their weights are zeroed.
 *   <li>Damping: H += λ·I with λ = {@code dampening} × mean(diag H) (1% by default).
 *   <li>H⁻¹ through Cholesky: L = chol(H), H⁻¹ = L⁻ᵀ·L⁻¹; then U = chol(H⁻¹)ᵀ, upper triangular.
 *   <li>Rows in blocks of {@code blockSize}: within a block each row is rounded, its error
 *       e = (w − q) / U_ii is subtracted from the block's later rows in proportion to U_i,j; after
 *       the block the accumulated errors update all later rows at once (one matrix product:
 *       W[i2:] −= U[i1:i2, i2:]ᵀ · E).
 * </ol>
 * Scales are per output column (or per tensor), chosen from the weights before any update, as in
 * the reference implementation; or per group of input rows, chosen as the loop reaches each group
 * ({@link #quantizeGroups}). Hessian accumulation (XᵀX), the block updates and the error
 * measure are ND4J matrix products. The Cholesky factorisation and the triangular inverse are
 * plain Java (about k³/3 multiply-adds each): ND4J 1.0.0-M2.1's {@code Cholesky} op and {@code
 * InvertMatrix} took minutes for k = 1536 on these machines. If the factorisation fails (H not
 * positive definite even after damping), damping grows tenfold, up to three times.
 */
final class Gptq {

  static final int DEFAULT_BLOCK = 128;
  static final double DEFAULT_DAMPENING = 0.01;

  private Gptq() {}

  /** Accumulates Σ x·xᵀ for one activation of width K over calibration batches (ND4J, float32). */
  static final class Hessian implements AutoCloseable {
    final int width;
    final INDArray sum;
    long rows;

    Hessian(int width) {
      this.width = width;
      this.sum = Nd4j.zeros(DataType.FLOAT, width, width);
    }

    void add(float[] values) {
      int n = values.length / width;
      if (n == 0) {
        return;
      }
      try (INDArray x = Nd4j.create(values, new long[] {n, width}, 'c');
          INDArray xtx = x.transpose().mmul(x)) {
        sum.addi(xtx);
      }
      rows += n;
    }

    void add(Hessian other) {
      sum.addi(other.sum);
      rows += other.rows;
    }

    @Override
    public void close() {
      sum.close();
    }
  }

  /**
   * The result for one weight.
   *
   * @param quantized codes and per-column scales, in the weight's own layout
   * @param roundToNearestError relative layer-output error of round-to-nearest on the same grid
   * @param gptqError relative layer-output error of the GPTQ weights
   */
  record Result(WeightQuantizer.Quantized quantized, double roundToNearestError, double gptqError) {}

  /**
   * Quantizes a weight.
   *
   * @param w the weight in its layout: [K, N] or, with {@code transposed}, [N, K] (Gemm transB)
   * @param perChannel one scale per output column, or one for the tensor
   */
  static Result quantize(float[] w, int k, int n, boolean transposed, Hessian hessian, IntegerGrid grid,
      boolean perChannel, int blockSize, double dampening) {
    try (Prepared p = prepare(w, k, n, transposed, hessian, dampening)) {
      float[] scales = new float[perChannel ? n : 1];
      int[] zeros = new int[scales.length];
      chooseScales(p.weights, k, n, grid, scales, zeros);
      int[] codes = new int[k * n];
      run(p.weights, p.u, k, n, new Grid() {
        @Override
        public int code(int row, int col, double value) {
          int s = perChannel ? col : 0;
          return grid.code(value, scales[s], zeros[s]);
        }

        @Override
        public double decode(int row, int col, int q) {
          int s = perChannel ? col : 0;
          return IntegerGrid.decode(q, scales[s], zeros[s]);
        }
      }, codes, blockSize);

      double[] gptq = new double[k * n];
      double[] rtn = new double[k * n];
      for (int r = 0; r < k; r++) {
        for (int c = 0; c < n; c++) {
          int s = perChannel ? c : 0;
          gptq[r * n + c] = IntegerGrid.decode(codes[r * n + c], scales[s], zeros[s]);
          rtn[r * n + c] = IntegerGrid.decode(grid.code(p.original[r * n + c], scales[s], zeros[s]), scales[s], zeros[s]);
        }
      }
      double gptqError = relativeError(p.h, p.original, gptq, k, n);
      double rtnError = relativeError(p.h, p.original, rtn, k, n);
      return new Result(layout(codes, scales, zeros, k, n, transposed, perChannel), rtnError, gptqError);
    }
  }

  /**
   * The result for one weight quantized in groups.
   *
   * @param quantized codes, scales and zero points in the order of the weight's {@link QuantLayout}
   * @param roundToNearestError relative layer-output error of the weight-only quantizer's own
   *     round-to-nearest on the same scheme, layout and range method
   * @param gptqError relative layer-output error of the GPTQ weights
   */
  record GroupResult(LinearQuantizer.Result quantized, double roundToNearestError, double gptqError) {}

  /**
   * GPTQ with one scale (and zero point) per group of {@code layout.groupSize()} consecutive input
   * rows of each output column, as in the published algorithm's grouped form: a group's parameters
   * are chosen when the row loop reaches its first row, from the weights as the error compensation
   * of the earlier rows has left them (min/max, or the MSE-optimal shrink of that range among
   * {@link LinearQuantizer#CANDIDATES} factors in [0.5, 1]), so later groups absorb earlier errors
   * into their own ranges.
   *
   * @param w the weight in its layout: [K, N] or, with {@code transposed}, [N, K] (Gemm transB)
   * @param layout the weight's group layout along K (axis 0 of [K, N], axis 1 of [N, K])
   */
  static GroupResult quantizeGroups(float[] w, int k, int n, boolean transposed, Hessian hessian, QuantScheme scheme,
      QuantLayout layout, boolean mse, int blockSize, double dampening) {
    int g = layout.groupSize();
    if (layout.mode() != QuantLayout.Mode.GROUP || layout.axis() != (transposed ? 1 : 0) || layout.size() != k * n) {
      throw new IllegalArgumentException("GPTQ groups run along K; got " + layout + " for [" + k + ", " + n + "]");
    }
    int blocks = layout.blocks();
    try (Prepared p = prepare(w, k, n, transposed, hessian, dampening)) {
      // Canonical order here: group (block b, column c) at b·n + c.
      float[] scales = new float[blocks * n];
      int[] zeros = new int[blocks * n];
      int[] codes = new int[k * n];
      run(p.weights, p.u, k, n, new Grid() {
        @Override
        public void beforeRow(int row, double[] current) {
          if (row % g == 0) {
            int b = row / g;
            groupParameters(current, n, row, Math.min(row + g, k), scheme, mse, scales, zeros, b * n);
          }
        }

        @Override
        public int code(int row, int col, double value) {
          int at = (row / g) * n + col;
          return Gptq.code(scheme, value, scales[at], zeros[at]);
        }

        @Override
        public double decode(int row, int col, int q) {
          int at = (row / g) * n + col;
          return (double) (q - zeros[at]) * scales[at];
        }
      }, codes, blockSize);

      LinearQuantizer.Result rtnResult = LinearQuantizer.quantize(w, layout, scheme, mse);
      float[] rtnDecoded = LinearQuantizer.dequantize(rtnResult, layout, scheme);
      double[] gptq = new double[k * n];
      double[] rtn = new double[k * n];
      byte[] out = new byte[k * n];
      for (int r = 0; r < k; r++) {
        for (int c = 0; c < n; c++) {
          int at = (r / g) * n + c;
          gptq[r * n + c] = (double) (codes[r * n + c] - zeros[at]) * scales[at];
          int e = transposed ? c * k + r : r * n + c;
          rtn[r * n + c] = rtnDecoded[e];
          out[e] = (byte) codes[r * n + c];
        }
      }
      float[] layoutScales = new float[blocks * n];
      int[] layoutZeros = new int[blocks * n];
      for (int b = 0; b < blocks; b++) {
        for (int c = 0; c < n; c++) {
          // [K, N] with groups on axis 0: (b, c) → b·n + c; [N, K] on axis 1: (c, b) → c·blocks + b.
          int e = transposed ? c * blocks + b : b * n + c;
          layoutScales[e] = scales[b * n + c];
          layoutZeros[e] = zeros[b * n + c];
        }
      }
      double gptqError = relativeError(p.h, p.original, gptq, k, n);
      double rtnError = relativeError(p.h, p.original, rtn, k, n);
      return new GroupResult(new LinearQuantizer.Result(out, layoutScales, layoutZeros, Double.NaN), rtnError,
          gptqError);
    }
  }

  /** The nearest code of {@code scheme}'s grid. */
  private static int code(QuantScheme s, double value, float scale, int zeroPoint) {
    return (int) Math.max(s.qmin(), Math.min(s.qmax(), Math.rint(value / scale) + zeroPoint));
  }

  /**
   * Scale and zero point for rows [r0, r1) of every column, into {@code scales[at + c]}: the range
   * (always including 0) as {@link LinearQuantizer} derives it, optionally shrunk by the factor with
   * the least squared error.
   */
  static void groupParameters(double[] w, int n, int r0, int r1, QuantScheme s, boolean mse, float[] scales,
      int[] zeros, int at) {
    double span = s.symmetric() ? (s.qmax() - s.qmin()) / 2.0 : s.qmax() - s.qmin();
    for (int c = 0; c < n; c++) {
      double lo = 0;
      double hi = 0;
      for (int r = r0; r < r1; r++) {
        lo = Math.min(lo, w[r * n + c]);
        hi = Math.max(hi, w[r * n + c]);
      }
      double bestError = Double.POSITIVE_INFINITY;
      for (int candidate = -1; candidate < (mse ? LinearQuantizer.CANDIDATES - 1 : 0); candidate++) {
        double f = candidate < 0 ? 1 : 0.5 + 0.5 * candidate / (LinearQuantizer.CANDIDATES - 1);
        float scale = (float) ((s.symmetric() ? Math.max(-lo, hi) : hi - lo) * f / span);
        int zero;
        if (!(scale > 0) || Float.isInfinite(scale)) {
          scale = 1f;
          zero = s.symmetric() ? s.symmetricZeroPoint() : Math.max(s.qmin(), Math.min(s.qmax(), 0));
        } else {
          zero = s.symmetric() ? s.symmetricZeroPoint()
              : (int) Math.max(s.qmin(), Math.min(s.qmax(), Math.rint(s.qmin() - lo * f / scale)));
        }
        double error = 0;
        if (mse) {
          for (int r = r0; r < r1; r++) {
            double v = w[r * n + c];
            double d = v - (double) (code(s, v, scale, zero) - zero) * scale;
            error += d * d;
          }
        }
        if (error < bestError) {
          bestError = error;
          scales[at + c] = scale;
          zeros[at + c] = zero;
        }
      }
    }
  }

  /** The weight as [K, N] doubles, its copy, the scaled Hessian and U, prepared for the row loop. */
  private record Prepared(double[] weights, double[] original, INDArray h, double[] u) implements AutoCloseable {
    @Override
    public void close() {
      h.close();
    }
  }

  private static Prepared prepare(float[] w, int k, int n, boolean transposed, Hessian hessian, double dampening) {
    double[] weights = new double[k * n];
    for (int r = 0; r < k; r++) {
      for (int c = 0; c < n; c++) {
        weights[r * n + c] = transposed ? w[c * k + r] : w[r * n + c];
      }
    }
    double[] original = weights.clone();
    INDArray h = hessian.sum.castTo(DataType.DOUBLE).muli(2.0 / Math.max(1, hessian.rows));
    try {
      double mean = 0;
      double[] dense = h.dup('c').data().asDouble();
      for (int i = 0; i < k; i++) {
        mean += dense[i * k + i] / k;
      }
      for (int i = 0; i < k; i++) {
        if (dense[i * k + i] == 0) {
          dense[i * k + i] = 1.0;
          for (int c = 0; c < n; c++) {
            weights[i * n + c] = 0;
          }
        }
      }
      double[] u = upperInverseCholesky(dense, k, mean == 0 ? 1 : mean, dampening);
      return new Prepared(weights, original, h, u);
    } catch (RuntimeException e) {
      h.close();
      throw e;
    }
  }

  /** Where the row loop gets its codes: per-channel/tensor scales fixed up front, or groups chosen as rows arrive. */
  interface Grid {
    /** Called before row {@code row} is quantized, with the weights as compensation has left them. */
    default void beforeRow(int row, double[] current) {}

    int code(int row, int col, double value);

    double decode(int row, int col, int q);
  }

  /**
   * U, upper triangular and row-major, with (H + λI)⁻¹ = Uᵀ·U. With J the order reversal, let
   * J·H·J = M·Mᵀ (Cholesky); then H = R·Rᵀ with R = J·M·J upper, so H⁻¹ = R⁻ᵀ·R⁻¹ and U = R⁻¹ =
   * J·M⁻¹·J: one factorisation and one triangular inverse, no general inverse.
   */
  static double[] upperInverseCholesky(double[] h, int k, double meanDiagonal, double dampening) {
    double lambda = dampening * meanDiagonal;
    for (int attempt = 0; ; attempt++) {
      double[] reversed = new double[k * k];
      for (int i = 0; i < k; i++) {
        for (int j = 0; j < k; j++) {
          reversed[i * k + j] = h[(k - 1 - i) * k + (k - 1 - j)];
        }
        reversed[i * k + i] += lambda;
      }
      double[] m = cholesky(reversed, k);
      if (m != null) {
        double[] x = lowerInverseTransposed(m, k);
        double[] u = new double[k * k];
        // x holds (M⁻¹)ᵀ; U[a][b] = M⁻¹[k-1-a][k-1-b] = x[k-1-b][k-1-a].
        for (int a = 0; a < k; a++) {
          for (int b = a; b < k; b++) {
            u[a * k + b] = x[(k - 1 - b) * k + (k - 1 - a)];
          }
        }
        return u;
      }
      if (attempt >= 3) {
        throw new CompressionException("GPTQ: the layer's Hessian is not positive definite even with damping "
            + lambda + "; use method rtn");
      }
      lambda = lambda == 0 ? 1e-6 : lambda * 10;
    }
  }

  /** Lower Cholesky factor of a symmetric row-major matrix, or {@code null} if it is not positive definite. */
  static double[] cholesky(double[] a, int k) {
    double[] l = new double[k * k];
    for (int j = 0; j < k; j++) {
      int rj = j * k;
      double s = a[rj + j];
      for (int p = 0; p < j; p++) {
        s -= l[rj + p] * l[rj + p];
      }
      if (!(s > 0)) {
        return null;
      }
      double d = Math.sqrt(s);
      l[rj + j] = d;
      for (int i = j + 1; i < k; i++) {
        int ri = i * k;
        double t = a[ri + j];
        for (int p = 0; p < j; p++) {
          t -= l[ri + p] * l[rj + p];
        }
        l[ri + j] = t / d;
      }
    }
    return l;
  }

  /**
   * (L⁻¹)ᵀ for lower triangular L, computed row by row of L⁻¹ and stored transposed so both operands
   * of every inner product are read contiguously.
   */
  private static double[] lowerInverseTransposed(double[] l, int k) {
    double[] xt = new double[k * k];
    for (int i = 0; i < k; i++) {
      int ri = i * k;
      double inv = 1 / l[ri + i];
      xt[i * k + i] = inv;
      for (int j = 0; j < i; j++) {
        // X[i][j] = −(Σ_{p=j}^{i−1} L[i][p]·X[p][j]) / L[i][i], with X[p][j] = xt[j][p].
        int rj = j * k;
        double s = 0;
        for (int p = j; p < i; p++) {
          s += l[ri + p] * xt[rj + p];
        }
        xt[rj + i] = -s * inv;
      }
    }
    return xt;
  }

  private static void chooseScales(double[] w, int k, int n, IntegerGrid grid, float[] scales, int[] zeros) {
    boolean perChannel = scales.length == n;
    double[] lo = new double[scales.length];
    double[] hi = new double[scales.length];
    for (int r = 0; r < k; r++) {
      for (int c = 0; c < n; c++) {
        int s = perChannel ? c : 0;
        lo[s] = Math.min(lo[s], w[r * n + c]);
        hi[s] = Math.max(hi[s], w[r * n + c]);
      }
    }
    for (int s = 0; s < scales.length; s++) {
      scales[s] = grid.scale(lo[s], hi[s]);
      zeros[s] = grid.zeroPoint(lo[s], scales[s]);
    }
  }

  private static void run(double[] w, double[] u, int k, int n, Grid grid, int[] codes, int blockSize) {
    try (INDArray upper = Nd4j.create(u, new long[] {k, k}, 'c')) {
      for (int i1 = 0; i1 < k; i1 += blockSize) {
        int i2 = Math.min(i1 + blockSize, k);
        int count = i2 - i1;
        double[] errors = new double[count * n];
        for (int i = 0; i < count; i++) {
          int row = i1 + i;
          grid.beforeRow(row, w);
          double d = u[row * k + row];
          for (int c = 0; c < n; c++) {
            double value = w[row * n + c];
            int q = grid.code(row, c, value);
            codes[row * n + c] = q;
            errors[i * n + c] = (value - grid.decode(row, c, q)) / d;
          }
          compensateWithinBlock(w, u, errors, k, n, i1, i, row, count);
        }
        compensateLaterRows(w, upper, errors, k, n, i1, i2);
      }
    }
  }

  /** tr(Δᵀ·H·Δ) / tr(Wᵀ·H·W): the layer's output error relative to its output energy. */
  /**
   * The OBS update inside a block (shared by GPTQ and SparseGPT): row {@code row} (the {@code i}-th
   * of the block starting at {@code i1}) left the scaled errors {@code errors[i][*]}; spread them
   * over the block's later rows along the upper inverse-Cholesky factor {@code u}.
   */
  static void compensateWithinBlock(double[] w, double[] u, double[] errors, int k, int n, int i1, int i, int row,
      int count) {
    for (int j = i + 1; j < count; j++) {
      double f = u[row * k + i1 + j];
      if (f == 0) {
        continue;
      }
      int base = (i1 + j) * n;
      for (int c = 0; c < n; c++) {
        w[base + c] -= f * errors[i * n + c];
      }
    }
  }

  /** The OBS update after a block {@code [i1, i2)}: all later rows at once, as one ND4J product. */
  static void compensateLaterRows(double[] w, INDArray upper, double[] errors, int k, int n, int i1, int i2) {
    if (i2 >= k) {
      return;
    }
    int count = i2 - i1;
    try (INDArray e = Nd4j.create(errors, new long[] {count, n}, 'c');
        INDArray block = upper.get(NDArrayIndex.interval(i1, i2), NDArrayIndex.interval(i2, k));
        INDArray update = block.transpose().mmul(e)) {
      double[] delta = update.dup('c').data().asDouble();
      for (int i = 0; i < delta.length; i++) {
        w[i2 * n + i] -= delta[i];
      }
    }
  }

  private static double relativeError(INDArray h, double[] w, double[] approx, int k, int n) {
    double[] delta = new double[k * n];
    for (int i = 0; i < delta.length; i++) {
      delta[i] = w[i] - approx[i];
    }
    try (INDArray d = Nd4j.create(delta, new long[] {k, n}, 'c');
        INDArray x = Nd4j.create(w, new long[] {k, n}, 'c');
        INDArray hd = h.mmul(d);
        INDArray hx = h.mmul(x)) {
      double noise = d.mul(hd).sumNumber().doubleValue();
      double signal = x.mul(hx).sumNumber().doubleValue();
      return signal == 0 ? noise : noise / signal;
    }
  }

  private static WeightQuantizer.Quantized layout(int[] codes, float[] scales, int[] zeros, int k, int n,
      boolean transposed, boolean perChannel) {
    byte[] out = new byte[k * n];
    for (int r = 0; r < k; r++) {
      for (int c = 0; c < n; c++) {
        out[transposed ? c * k + r : r * n + c] = (byte) codes[r * n + c];
      }
    }
    byte[] zp = new byte[zeros.length];
    for (int i = 0; i < zeros.length; i++) {
      zp[i] = (byte) zeros[i];
    }
    int axis = perChannel ? (transposed ? 0 : 1) : -1;
    return new WeightQuantizer.Quantized(out, scales, zp, axis);
  }

  private static boolean allFinite(double[] values) {
    for (double v : values) {
      if (!Double.isFinite(v)) {
        return false;
      }
    }
    return true;
  }
}
