package dev.modelpress.job;

import dev.modelpress.api.dto.ActivationQuantization;
import dev.modelpress.api.dto.FidelityTarget;
import dev.modelpress.api.dto.JobStep;
import dev.modelpress.api.dto.QuantizeWeights;
import dev.modelpress.compression.CalibratedQuantizeSpec;
import dev.modelpress.compression.QuantizeSpec;
import dev.modelpress.system.ApiProblem;
import java.util.List;
import java.util.Locale;

/**
 * The data-aware part of a {@code quantize} step ({@code activations}, {@code method: gptq},
 * {@code target}, {@code sensitivity}): defaults, field errors with their paths, and the mapping
 * to {@link CalibratedQuantizeSpec}. Kept apart from {@link JobSpecs} so the weight-only fields
 * can grow there independently.
 */
final class CalibratedSteps {

  private CalibratedSteps() {}

  /** Copies the data-aware fields into a normalized step, lower-casing names and filling defaults. */
  static void normalize(JobStep from, JobStep to) {
    ActivationQuantization a = from.getActivations();
    if (a != null) {
      to.setActivations(new ActivationQuantization()
          .calibrator(a.getCalibrator() == null ? "minmax" : lower(a.getCalibrator()))
          .percentile(a.getPercentile() == null && "percentile".equals(lower(a.getCalibrator()))
              ? Double.valueOf(CalibratedQuantizeSpec.Activations.DEFAULT_PERCENTILE) : a.getPercentile())
          .symmetric(a.getSymmetric() == null ? Boolean.FALSE : a.getSymmetric()));
    }
    FidelityTarget t = from.getTarget();
    if (t != null) {
      to.setTarget(new FidelityTarget()
          .metric(t.getMetric() == null ? "cosine" : lower(t.getMetric()))
          .min(t.getMin())
          .max(t.getMax())
          .higherBits(t.getHigherBits() == null ? 8 : t.getHigherBits()));
    }
    to.setSensitivity(from.getSensitivity());
    if ("quantize".equals(to.getType()) && to.getMethod() != null) {
      to.setMethod(lower(to.getMethod()));
    }
  }

  /** Whether a quantize step needs calibration data. */
  static boolean isDataAware(JobStep s) {
    return s.getActivations() != null || s.getTarget() != null || Boolean.TRUE.equals(s.getSensitivity())
        || (s.getMethod() != null && !"rtn".equals(s.getMethod()));
  }

  /** Rejects the data-aware fields on a step type that has none. */
  static void forbid(JobStep s, String at, String type, List<ApiProblem.FieldError> errors) {
    if (s.getActivations() != null) {
      errors.add(new ApiProblem.FieldError(at + ".activations", "not allowed in a " + type + " step"));
    }
    if (s.getTarget() != null) {
      errors.add(new ApiProblem.FieldError(at + ".target", "not allowed in a " + type + " step"));
    }
    if (s.getSensitivity() != null) {
      errors.add(new ApiProblem.FieldError(at + ".sensitivity", "not allowed in a " + type + " step"));
    }
  }

  static CalibratedQuantizeSpec toSpec(JobStep s, String at, List<String> include, List<String> exclude,
      List<ApiProblem.FieldError> errors) {
    if (s.getSparsity() != null) {
      errors.add(new ApiProblem.FieldError(at + ".sparsity", "not allowed in a quantize step"));
    }
    if (s.getThreshold() != null) {
      errors.add(new ApiProblem.FieldError(at + ".threshold", "not allowed in a quantize step"));
    }
    if (s.getScope() != null) {
      errors.add(new ApiProblem.FieldError(at + ".scope", "not allowed in a quantize step"));
    }
    CalibratedQuantizeSpec.Method method = CalibratedQuantizeSpec.Method.RTN;
    if ("gptq".equals(s.getMethod())) {
      method = CalibratedQuantizeSpec.Method.GPTQ;
    } else if (s.getMethod() != null && !"rtn".equals(s.getMethod())) {
      errors.add(new ApiProblem.FieldError(at + ".method",
          "unknown quantization method '" + s.getMethod() + "'; supported: rtn, gptq"));
    }
    QuantizeWeights w = s.getWeights();
    QuantizeSpec.Granularity granularity = switch (w.getGranularity()) {
      case "channel" -> QuantizeSpec.Granularity.CHANNEL;
      case "tensor" -> QuantizeSpec.Granularity.TENSOR;
      case "group" -> QuantizeSpec.Granularity.GROUP;
      default -> {
        errors.add(new ApiProblem.FieldError(at + ".weights.granularity",
            "must be channel, tensor or group, not '" + w.getGranularity() + "'"));
        yield QuantizeSpec.Granularity.CHANNEL;
      }
    };
    if (w.getRange() != null && !"minmax".equals(w.getRange()) && !"mse".equals(w.getRange())) {
      // lsq/hqq fit fractional zero points to the weights alone; GPTQ and static steps choose their
      // ranges from min/max (or the MSE search for grouped GPTQ).
      errors.add(new ApiProblem.FieldError(at + ".weights.range", "a calibrated quantize step takes range minmax or "
          + "mse, not '" + w.getRange() + "' (lsq and hqq are weight-only ranges)"));
    }
    QuantizeSpec weights = new QuantizeSpec(w.getBits(), w.getSymmetric(), granularity, include, exclude);
    if (granularity == QuantizeSpec.Granularity.GROUP) {
      // Grouped GPTQ is written by the weight-only encoder, so the weight-only fields apply.
      QuantizeSpec.RangeMethod range = "mse".equals(w.getRange()) ? QuantizeSpec.RangeMethod.MSE
          : QuantizeSpec.RangeMethod.MINMAX;
      QuantizeSpec.Format format = switch (w.getFormat() == null ? "auto" : w.getFormat()) {
        case "qdq" -> QuantizeSpec.Format.QDQ;
        case "matmulnbits" -> QuantizeSpec.Format.MATMULNBITS;
        default -> QuantizeSpec.Format.AUTO;
      };
      weights = new QuantizeSpec(w.getBits(), w.getSymmetric(), granularity, include, exclude, w.getGroupSize(), null,
          !Boolean.FALSE.equals(w.getSigned()), null, range, format);
    }
    return new CalibratedQuantizeSpec(weights, method, activations(s.getActivations(), at, errors),
        target(s.getTarget(), at, errors), Boolean.TRUE.equals(s.getSensitivity()));
  }

  private static CalibratedQuantizeSpec.Activations activations(ActivationQuantization a, String at,
      List<ApiProblem.FieldError> errors) {
    if (a == null) {
      return null;
    }
    CalibratedQuantizeSpec.Calibrator calibrator = switch (a.getCalibrator()) {
      case "minmax" -> CalibratedQuantizeSpec.Calibrator.MINMAX;
      case "percentile" -> CalibratedQuantizeSpec.Calibrator.PERCENTILE;
      case "entropy" -> CalibratedQuantizeSpec.Calibrator.ENTROPY;
      default -> {
        errors.add(new ApiProblem.FieldError(at + ".activations.calibrator",
            "must be minmax, percentile or entropy, not '" + a.getCalibrator() + "'"));
        yield CalibratedQuantizeSpec.Calibrator.MINMAX;
      }
    };
    if (a.getPercentile() != null && calibrator != CalibratedQuantizeSpec.Calibrator.PERCENTILE) {
      errors.add(new ApiProblem.FieldError(at + ".activations.percentile",
          "only applies to calibrator percentile (calibrator is " + a.getCalibrator() + ")"));
    }
    double percentile = a.getPercentile() == null ? CalibratedQuantizeSpec.Activations.DEFAULT_PERCENTILE
        : a.getPercentile();
    return new CalibratedQuantizeSpec.Activations(calibrator, percentile, a.getSymmetric());
  }

  private static CalibratedQuantizeSpec.FidelityTarget target(FidelityTarget t, String at,
      List<ApiProblem.FieldError> errors) {
    if (t == null) {
      return null;
    }
    return switch (t.getMetric()) {
      case "cosine" -> {
        if (t.getMax() != null) {
          errors.add(new ApiProblem.FieldError(at + ".target.max", "a cosine target is a minimum: give min"));
        }
        if (t.getMin() == null) {
          errors.add(new ApiProblem.FieldError(at + ".target.min", "required for metric cosine (e.g. 0.995)"));
          yield null;
        }
        yield new CalibratedQuantizeSpec.FidelityTarget(CalibratedQuantizeSpec.Metric.COSINE, t.getMin(),
            t.getHigherBits());
      }
      case "mse" -> {
        if (t.getMin() != null) {
          errors.add(new ApiProblem.FieldError(at + ".target.min", "an mse target is a maximum: give max"));
        }
        if (t.getMax() == null) {
          errors.add(new ApiProblem.FieldError(at + ".target.max", "required for metric mse"));
          yield null;
        }
        yield new CalibratedQuantizeSpec.FidelityTarget(CalibratedQuantizeSpec.Metric.MSE, t.getMax(),
            t.getHigherBits());
      }
      default -> {
        errors.add(new ApiProblem.FieldError(at + ".target.metric",
            "must be cosine or mse, not '" + t.getMetric() + "'"));
        yield null;
      }
    };
  }

  private static String lower(String s) {
    return s == null ? null : s.toLowerCase(Locale.ROOT);
  }
}
