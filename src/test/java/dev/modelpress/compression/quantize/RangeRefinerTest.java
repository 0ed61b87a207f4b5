package dev.modelpress.compression.quantize;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** LSQ and HQQ refinement against min/max and the MSE search, on heavy-tailed random weights. */
class RangeRefinerTest {

  static final int K = 256;
  static final int N = 64;

  /** MatMul-like [K, N] groups of 32 along K: strided sets, as in a real MatMul weight. */
  static final QuantLayout LAYOUT = QuantLayout.perGroup(new long[] {K, N}, 0, 32);

  /** Laplace-distributed weights (heavier tails than a Gaussian) with 1% outliers 6× larger. */
  static float[] heavyTailed(long seed) {
    Random r = new Random(seed);
    float[] w = new float[K * N];
    for (int i = 0; i < w.length; i++) {
      double u = r.nextDouble() - 0.5;
      double laplace = -Math.signum(u) * Math.log(1 - 2 * Math.abs(u));
      w[i] = (float) (0.02 * laplace * (r.nextInt(100) == 0 ? 6 : 1));
    }
    return w;
  }

  static double error(float[] w, LinearQuantizer.Result q, QuantScheme s, double p) {
    float[] d = LinearQuantizer.dequantize(q, LAYOUT, s);
    double sum = 0;
    for (int i = 0; i < w.length; i++) {
      double e = Math.abs(w[i] - d[i]);
      sum += p == 2 ? e * e : Math.pow(e, p);
    }
    return sum;
  }

  static void assertCodesInRange(LinearQuantizer.Result q, QuantScheme s) {
    for (byte c : q.codes()) {
      assertThat(LinearQuantizer.code(c, s)).isBetween(s.qmin(), s.qmax());
    }
    for (int p = 0; p < q.scales().length; p++) {
      assertThat(q.scales()[p]).isPositive().isFinite();
      assertThat(q.zeroPoints()[p]).isBetween(s.qmin(), s.qmax());
    }
  }

  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void lsqLowersTheSquaredErrorOfMinMaxAndMse(boolean signed) {
    QuantScheme s = QuantScheme.integer(4, signed, false);
    float[] w = heavyTailed(7);
    double minmax = error(w, LinearQuantizer.quantize(w, LAYOUT, s, false), s, 2);
    double mse = error(w, LinearQuantizer.quantize(w, LAYOUT, s, true), s, 2);
    LinearQuantizer.Result lsq = RangeRefiner.quantize(w, LAYOUT, s, RangeRefiner.Method.LSQ);
    double refined = error(w, lsq, s, 2);
    System.out.printf("int4 g32 %s: L2 min/max %.5g, MSE %.5g, LSQ %.5g%n", signed ? "signed" : "unsigned", minmax,
        mse, refined);
    assertThat(mse).isLessThan(minmax);
    // A fractional zero point and a refitted scale take a clear step below the best shrink.
    assertThat(refined).isLessThan(mse * 0.95);
    assertCodesInRange(lsq, s);
    assertThat(lsq.fractionalZeroPoints()).hasSize(LAYOUT.params());
    for (int p = 0; p < LAYOUT.params(); p++) {
      assertThat(lsq.fractionalZeroPoints()[p]).isBetween((float) s.qmin(), (float) s.qmax());
      assertThat(lsq.zeroPoints()[p]).isEqualTo((int) Math.rint(lsq.fractionalZeroPoints()[p]));
    }
  }

  @Test
  void hqqLowersTheLpErrorAndTheSquaredErrorOfMinMaxAndMse() {
    QuantScheme s = QuantScheme.integer(4, true, false);
    float[] w = heavyTailed(11);
    LinearQuantizer.Result minmax = LinearQuantizer.quantize(w, LAYOUT, s, false);
    LinearQuantizer.Result mse = LinearQuantizer.quantize(w, LAYOUT, s, true);
    LinearQuantizer.Result hqq = RangeRefiner.quantize(w, LAYOUT, s, RangeRefiner.Method.HQQ);
    double p = RangeRefiner.P;
    System.out.printf("int4 g32: l0.7 min/max %.5g, MSE %.5g, HQQ %.5g; L2 %.5g, %.5g, %.5g%n", error(w, minmax, s, p),
        error(w, mse, s, p), error(w, hqq, s, p), error(w, minmax, s, 2), error(w, mse, s, 2), error(w, hqq, s, 2));
    assertThat(error(w, hqq, s, p)).isLessThan(error(w, mse, s, p) * 0.97).isLessThan(error(w, minmax, s, p));
    assertThat(error(w, hqq, s, 2)).isLessThan(error(w, mse, s, 2)).isLessThan(error(w, minmax, s, 2));
    assertCodesInRange(hqq, s);
  }

  @Test
  void refinementIsDeterministic() {
    QuantScheme s = QuantScheme.integer(4, false, false);
    float[] w = heavyTailed(5);
    for (RangeRefiner.Method m : RangeRefiner.Method.values()) {
      LinearQuantizer.Result a = RangeRefiner.quantize(w, LAYOUT, s, m);
      LinearQuantizer.Result b = RangeRefiner.quantize(w.clone(), LAYOUT, s, m);
      assertThat(a.codes()).isEqualTo(b.codes());
      assertThat(a.scales()).isEqualTo(b.scales());
      assertThat(a.fractionalZeroPoints()).isEqualTo(b.fractionalZeroPoints());
      assertThat(a.clipRatio()).isEqualTo(b.clipRatio());
    }
  }

  @Test
  void roundingTheZeroPointInTheLoopGainsLittle() {
    // What the MiniLM measurements showed: the gain comes from the fractional zero point.
    QuantScheme s = QuantScheme.integer(4, true, false);
    float[] w = heavyTailed(13);
    double mse = error(w, LinearQuantizer.quantize(w, LAYOUT, s, true), s, 2);
    RangeRefiner.Refined integer = RangeRefiner.refine(w, LAYOUT, s,
        new RangeRefiner.Config(RangeRefiner.Method.LSQ, true, true, true, RangeRefiner.BETA));
    double integerError = 0;
    for (int e = 0; e < w.length; e++) {
      int p = LAYOUT.paramOf(e);
      double d = w[e] - (LinearQuantizer.code(integer.codes()[e], s) - integer.zeroPoints()[p]) * integer.scales()[p];
      integerError += d * d;
      assertThat(integer.zeroPoints()[p]).isEqualTo(Math.rint(integer.zeroPoints()[p]));
    }
    double fractional = error(w, RangeRefiner.quantize(w, LAYOUT, s, RangeRefiner.Method.LSQ), s, 2);
    System.out.printf("int4 g32 L2: MSE %.5g, LSQ integer zero point %.5g, fractional %.5g%n", mse, integerError,
        fractional);
    assertThat(integerError).isLessThanOrEqualTo(mse).isGreaterThan(mse * 0.97);
    assertThat(fractional).isLessThan(integerError * 0.95);
  }

  @Test
  void symmetricGridsKeepTheirZeroPointAndRefitTheScale() {
    QuantScheme s = QuantScheme.integer(4, true, true);
    float[] w = heavyTailed(3);
    double mse = error(w, LinearQuantizer.quantize(w, LAYOUT, s, true), s, 2);
    LinearQuantizer.Result lsq = RangeRefiner.quantize(w, LAYOUT, s, RangeRefiner.Method.LSQ);
    assertThat(lsq.fractionalZeroPoints()).isNull();
    assertThat(lsq.zeroPoints()).containsOnly(s.symmetricZeroPoint());
    assertThat(error(w, lsq, s, 2)).isLessThanOrEqualTo(mse);
    assertThat(lsq.clipRatio()).isBetween(0.5, 1.0);
  }

  @Test
  void allZeroAndConstantGroupsDecodeExactly() {
    QuantScheme s = QuantScheme.integer(4, false, false);
    float[] w = heavyTailed(9);
    for (int k = 0; k < 32; k++) {
      w[k * N] = 0;          // column 0, first group: all zero
      w[k * N + 1] = 0.25f;  // column 1, first group: one value
    }
    for (RangeRefiner.Method m : RangeRefiner.Method.values()) {
      LinearQuantizer.Result q = RangeRefiner.quantize(w, LAYOUT, s, m);
      float[] d = LinearQuantizer.dequantize(q, LAYOUT, s);
      for (int k = 0; k < 32; k++) {
        assertThat(d[k * N]).isEqualTo(0f);
        assertThat(d[k * N + 1]).isCloseTo(0.25f, org.assertj.core.data.Offset.offset(0.25f / 30));
      }
      assertCodesInRange(q, s);
    }
  }
}
