package dev.modelpress.compression;

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
 * the reference implementation. Hessian accumulation (XᵀX), the block updates and the error
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
    double[] weights = new double[k * n];
    for (int r = 0; r < k; r++) {
      for (int c = 0; c < n; c++) {
        weights[r * n + c] = transposed ? w[c * k + r] : w[r * n + c];
      }
    }
    double[] original = weights.clone();
    try (INDArray h = hessian.sum.castTo(DataType.DOUBLE).muli(2.0 / Math.max(1, hessian.rows))) {
      double[] diag = new double[k];
      double mean = 0;
      for (int i = 0; i < k; i++) {
        diag[i] = h.getDouble(i, i);
        mean += diag[i] / k;
      }
      {
        double[] dense = h.dup('c').data().asDouble();
        for (int i = 0; i < k; i++) {
          if (diag[i] == 0) {
            dense[i * k + i] = 1.0;
            for (int c = 0; c < n; c++) {
              weights[i * n + c] = 0;
            }
          }
        }
        double[] u = upperInverseCholesky(dense, k, mean == 0 ? 1 : mean, dampening);

        float[] scales = new float[perChannel ? n : 1];
        int[] zeros = new int[scales.length];
        chooseScales(weights, k, n, grid, scales, zeros);
        int[] codes = new int[k * n];
        run(weights, u, k, n, grid, scales, zeros, codes, blockSize);

        double[] gptq = new double[k * n];
        double[] rtn = new double[k * n];
        for (int r = 0; r < k; r++) {
          for (int c = 0; c < n; c++) {
            int s = perChannel ? c : 0;
            gptq[r * n + c] = IntegerGrid.decode(codes[r * n + c], scales[s], zeros[s]);
            rtn[r * n + c] = IntegerGrid.decode(grid.code(original[r * n + c], scales[s], zeros[s]), scales[s], zeros[s]);
          }
        }
        double gptqError = relativeError(h, original, gptq, k, n);
        double rtnError = relativeError(h, original, rtn, k, n);
        return new Result(layout(codes, scales, zeros, k, n, transposed, perChannel), rtnError, gptqError);
      }
    }
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

  private static void run(double[] w, double[] u, int k, int n, IntegerGrid grid, float[] scales, int[] zeros,
      int[] codes, int blockSize) {
    boolean perChannel = scales.length == n;
    try (INDArray upper = Nd4j.create(u, new long[] {k, k}, 'c')) {
      for (int i1 = 0; i1 < k; i1 += blockSize) {
        int i2 = Math.min(i1 + blockSize, k);
        int count = i2 - i1;
        double[] errors = new double[count * n];
        for (int i = 0; i < count; i++) {
          int row = i1 + i;
          double d = u[row * k + row];
          for (int c = 0; c < n; c++) {
            int s = perChannel ? c : 0;
            double value = w[row * n + c];
            int q = grid.code(value, scales[s], zeros[s]);
            codes[row * n + c] = q;
            errors[i * n + c] = (value - IntegerGrid.decode(q, scales[s], zeros[s])) / d;
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
