package dev.modelpress.compression;

import java.util.List;

/**
 * Quantization that looks at data: activations quantized statically with ranges from a
 * calibrator, GPTQ weights, a per-tensor sensitivity analysis, or mixed precision driven by a
 * fidelity target. All of these run the model in ONNX Runtime on the job's calibration dataset.
 *
 * @param weights bits, symmetry, granularity and tensor selection of the weights
 * @param method how weights are rounded: round-to-nearest or GPTQ
 * @param activations static activation quantization, or {@code null} for weight-only
 * @param target mixed precision: the fidelity to reach by keeping sensitive tensors at higher
 *     precision, or {@code null}
 * @param sensitivity whether to measure and report each tensor's sensitivity (always done with a target)
 */
public record CalibratedQuantizeSpec(
    QuantizeSpec weights, Method method, Activations activations, FidelityTarget target, boolean sensitivity)
    implements StepSpec {

  /** How weight values are rounded to the integer grid. */
  public enum Method {
    /** Round to nearest, each weight on its own. */
    RTN,
    /** GPTQ: column by column, compensating each rounding error with the inverse Hessian of the layer inputs. */
    GPTQ
  }

  /** How an activation's quantization range is chosen from the calibration values. */
  public enum Calibrator {
    /** The observed minimum and maximum. */
    MINMAX,
    /** Clip |x| at a percentile of its histogram. */
    PERCENTILE,
    /** Clip |x| at the threshold minimising the KL divergence between float and 128-level histograms. */
    ENTROPY
  }

  /**
   * Static activation quantization.
   *
   * @param calibrator range selection
   * @param percentile for {@link Calibrator#PERCENTILE}: the percentile of |x| kept, in (0, 100]
   * @param symmetric int8 with zero point 0 (true) or uint8 with a zero point (false, the default)
   */
  public record Activations(Calibrator calibrator, double percentile, boolean symmetric) {
    public static final double DEFAULT_PERCENTILE = 99.99;

    public Activations {
      calibrator = calibrator == null ? Calibrator.MINMAX : calibrator;
    }
  }

  /** The output measure a fidelity target is about. */
  public enum Metric {
    /** Mean cosine similarity of per-sample outputs; the target is a minimum. */
    COSINE,
    /** Mean squared error of the outputs; the target is a maximum. */
    MSE
  }

  /**
   * A fidelity target for mixed precision.
   *
   * @param metric what is measured at the model outputs on the calibration samples
   * @param threshold minimum cosine or maximum MSE
   * @param higherBits precision of the tensors kept: 8 (int8 per channel) or 32 (left in float)
   */
  public record FidelityTarget(Metric metric, double threshold, int higherBits) {

    /** Whether a measured fidelity meets this target. */
    public boolean met(double meanCosine, double mse) {
      return metric == Metric.COSINE ? meanCosine >= threshold : mse <= threshold;
    }
  }

  public CalibratedQuantizeSpec {
    method = method == null ? Method.RTN : method;
    sensitivity |= target != null;
  }

  @Override
  public String type() {
    return "quantize";
  }

  @Override
  public List<String> include() {
    return weights.include();
  }

  @Override
  public List<String> exclude() {
    return weights.exclude();
  }
}
