package dev.modelpress.compression;

import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.evaluation.WeightProbe;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Chooses which tensors keep a higher precision so the model meets a fidelity target.
 *
 * <p>Tensors are ranked by sensitivity (output error when quantized alone, worst first). Keeping
 * the k most sensitive at higher precision and the rest at the low precision gives a fidelity
 * f(k); f(0) is uniform low precision and f(n) uniform high precision. The search assumes f grows
 * with k (more precision, less error: true up to noise, because the ranking puts the largest
 * errors first), finds the first k that meets the target by doubling k, then bisects between the
 * last miss and the first hit: about 2·log2(n) model runs on the probe's samples instead of n.
 */
final class MixedPrecisionSearch {

  private MixedPrecisionSearch() {}

  /** Reports each trial; also the cancellation point. */
  @FunctionalInterface
  interface Trials {
    void trial(int trial, String message);
  }

  /**
   * The outcome.
   *
   * @param kept tensors at higher precision, most sensitive first
   * @param high their higher-precision codes ({@code null} value or missing = left in float)
   * @param uniform the metric at k = 0
   * @param achieved the metric of the chosen k
   * @param trials model runs made
   */
  record Decision(List<String> kept, Map<String, WeightQuantizer.Quantized> high, double uniform, double achieved,
      int trials) {}

  static Decision search(WeightProbe probe, List<CalibrationReport.Sensitivity> ranking,
      CalibratedQuantizeSpec.FidelityTarget target, Map<String, WeightQuantizer.Quantized> low,
      Map<String, WeightQuantizer.Quantized> high, Map<String, long[]> shapes, Trials trials)
      throws EvaluationException {
    List<String> order = ranking.stream().map(CalibrationReport.Sensitivity::tensor).toList();
    int n = order.size();
    Map<Integer, Double> measured = new HashMap<>();
    Evaluator f = new Evaluator(probe, order, target, low, high, shapes, measured, trials);

    double uniform = f.value(0);
    if (target.met(uniform, uniform)) {
      return new Decision(List.of(), high, uniform, uniform, measured.size());
    }
    int miss = 0;
    int hit = -1;
    for (int k = 1; ; k = Math.min(n, 2 * k)) {
      if (f.meets(k)) {
        hit = k;
        break;
      }
      miss = k;
      if (k == n) {
        break;
      }
    }
    if (hit < 0) {
      throw new CompressionException(String.format(java.util.Locale.ROOT,
          "mixed precision cannot reach %s %s %.6g on the calibration data: with all %d tensors at %s it reaches %.6g",
          target.metric().name().toLowerCase(java.util.Locale.ROOT),
          target.metric() == CalibratedQuantizeSpec.Metric.COSINE ? ">=" : "<=", target.threshold(), n,
          target.higherBits() == 32 ? "float" : target.higherBits() + " bits", f.value(n)));
    }
    while (hit - miss > 1) {
      int mid = (miss + hit) >>> 1;
      if (f.meets(mid)) {
        hit = mid;
      } else {
        miss = mid;
      }
    }
    return new Decision(new ArrayList<>(order.subList(0, hit)), high, uniform, f.value(hit), measured.size());
  }

  /** f(k), memoised: the metric with the k most sensitive tensors at higher precision. */
  private record Evaluator(WeightProbe probe, List<String> order, CalibratedQuantizeSpec.FidelityTarget target,
      Map<String, WeightQuantizer.Quantized> low, Map<String, WeightQuantizer.Quantized> high,
      Map<String, long[]> shapes, Map<Integer, Double> measured, Trials trials) {

    boolean meets(int k) throws EvaluationException {
      double v = value(k);
      return target.met(v, v);
    }

    double value(int k) throws EvaluationException {
      Double known = measured.get(k);
      if (known != null) {
        return known;
      }
      trials.trial(measured.size(), "mixed precision: trying " + k + " of " + order.size() + " tensors at higher precision");
      Map<String, float[]> values = new HashMap<>();
      for (int i = 0; i < order.size(); i++) {
        String name = order.get(i);
        WeightQuantizer.Quantized q = i < k ? high.get(name) : low.get(name);
        if (q != null) {
          values.put(name, IntegerGrid.dequantize(q, shapes.get(name)));
        }
      }
      WeightProbe.Fidelity fidelity = probe.measure(values);
      double v = target.metric() == CalibratedQuantizeSpec.Metric.COSINE ? fidelity.meanCosine() : fidelity.mse();
      measured.put(k, v);
      return v;
    }
  }
}
