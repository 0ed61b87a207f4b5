package dev.modelpress.compression;

import java.util.List;

/**
 * What a data-aware quantize step learned from the calibration data: the answer to "why did
 * accuracy drop" and "what did the service decide".
 *
 * @param method {@code static}, {@code gptq} or {@code rtn}
 * @param samples calibration samples run
 * @param activations static quantization: the range chosen for each quantized activation
 * @param skippedActivations static quantization: inputs of quantizable nodes left in float, with why
 * @param layers GPTQ: each layer's output error against round-to-nearest's
 * @param sensitivity tensors ranked by the output error each causes when quantized alone, worst first
 * @param mixed mixed precision: the target, the tensors kept at higher precision, the fidelity reached
 */
public record CalibrationReport(
    String method,
    int samples,
    List<ActivationRange> activations,
    List<String> skippedActivations,
    List<LayerError> layers,
    List<Sensitivity> sensitivity,
    MixedPrecision mixed) {

  public CalibrationReport {
    activations = activations == null ? List.of() : List.copyOf(activations);
    skippedActivations = skippedActivations == null ? List.of() : List.copyOf(skippedActivations);
    layers = layers == null ? List.of() : List.copyOf(layers);
    sensitivity = sensitivity == null ? List.of() : List.copyOf(sensitivity);
  }

  /**
   * One activation's quantization.
   *
   * @param tensor the activation
   * @param min smallest value observed
   * @param max largest value observed
   * @param low lower end of the chosen range
   * @param high upper end of the chosen range
   * @param scale the QuantizeLinear scale
   * @param zeroPoint the QuantizeLinear zero point
   */
  public record ActivationRange(String tensor, double min, double max, double low, double high, double scale,
      int zeroPoint) {}

  /**
   * One layer's output error on the calibration inputs, relative: ‖X·W − X·Ŵ‖² / ‖X·W‖².
   *
   * @param tensor the weight
   * @param roundToNearest the error of rounding each weight to nearest
   * @param gptq the error of the GPTQ weights
   */
  public record LayerError(String tensor, double roundToNearest, double gptq) {}

  /**
   * A tensor's sensitivity: the model-output error when only it is quantized.
   *
   * @param tensor the weight
   * @param error 1 − mean cosine of the outputs
   * @param mse mean squared error of the outputs
   */
  public record Sensitivity(String tensor, double error, double mse) {}

  /**
   * A mixed-precision decision.
   *
   * @param metric {@code cosine} or {@code mse}
   * @param target the threshold asked for
   * @param lowBits bits of the tensors not kept
   * @param higherBits bits of the kept tensors (32 = float)
   * @param uniform the metric with every tensor at {@code lowBits}
   * @param achieved the metric of the chosen mix
   * @param kept the tensors kept at {@code higherBits}, most sensitive first
   * @param trials model runs the search took
   */
  public record MixedPrecision(String metric, double target, int lowBits, int higherBits, double uniform,
      double achieved, List<String> kept, int trials) {
    public MixedPrecision {
      kept = List.copyOf(kept);
    }
  }
}
