package dev.modelpress.job;

import dev.modelpress.api.dto.JobStep;
import dev.modelpress.api.dto.QuantizeWeights;
import dev.modelpress.compression.PruneSpec;
import dev.modelpress.compression.QuantizeSpec;
import dev.modelpress.compression.ShareSpec;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.system.ApiProblem;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Translates the API's step objects into compression specs, filling defaults and collecting every
 * field error with its path ({@code steps[1].sparsity}). Requests for methods that are valid in the
 * field but not built here yet are 501, not 422.
 */
public final class JobSpecs {

  private JobSpecs() {}

  /** The steps with defaults made explicit, as stored and echoed back by the API. */
  public static List<JobStep> normalize(List<JobStep> steps) {
    List<JobStep> out = new ArrayList<>();
    for (JobStep s : steps) {
      JobStep n = new JobStep(lower(s.getType()));
      n.setInclude(s.getInclude());
      n.setExclude(s.getExclude());
      if ("prune".equals(n.getType())) {
        n.setMethod(s.getMethod() == null ? "magnitude" : lower(s.getMethod()));
        n.setSparsity(s.getSparsity());
        n.setThreshold(s.getThreshold());
        n.setScope(s.getScope() == null ? "layer" : lower(s.getScope()));
        n.setWeights(s.getWeights());
        n.setN(s.getN());
        n.setM(s.getM());
        n.setClusters(s.getClusters());
        n.setIterations(s.getIterations());
        boolean structured = PruneSpec.STRUCTURED.equals(n.getMethod());
        n.setCriterion(s.getCriterion() == null && structured ? "l1" : lower(s.getCriterion()));
        n.setUnit(s.getUnit() == null && structured ? "channels" : lower(s.getUnit()));
        // correlation pruning without sparsity or threshold removes every neuron with |r| >= 0.95.
        if (PruneSpec.CORRELATION.equals(n.getMethod()) && s.getSparsity() == null && s.getThreshold() == null) {
          n.setThreshold(PruneSpec.DEFAULT_CORRELATION);
        }
      } else if ("share".equals(n.getType())) {
        n.setClusters(s.getClusters() == null ? 32 : s.getClusters());
        n.setIterations(s.getIterations() == null ? ShareSpec.DEFAULT_ITERATIONS : s.getIterations());
        n.setMethod(s.getMethod());
        n.setSparsity(s.getSparsity());
        n.setThreshold(s.getThreshold());
        n.setScope(s.getScope());
        n.setWeights(s.getWeights());
        n.setN(s.getN());
        n.setM(s.getM());
        n.setCriterion(s.getCriterion());
        n.setUnit(s.getUnit());
      } else if (SearchSpecs.TYPE.equals(n.getType())) {
        SearchSpecs.normalizeInto(s, n);
      } else if ("quantize".equals(n.getType())) {
        n.setWeights(normalizeWeights(s.getWeights() == null ? new QuantizeWeights() : s.getWeights()));
        n.setMethod(s.getMethod());
        n.setSparsity(s.getSparsity());
        n.setThreshold(s.getThreshold());
        n.setScope(s.getScope());
        copyPruneFields(s, n);
      } else {
        n.setMethod(s.getMethod());
        n.setSparsity(s.getSparsity());
        n.setThreshold(s.getThreshold());
        n.setScope(s.getScope());
        n.setWeights(s.getWeights());
        copyPruneFields(s, n);
      }
      CalibratedSteps.normalize(s, n);
      TrainingSteps.normalize(s, n);
      out.add(n);
    }
    return out;
  }

  // ---- quantize weights: defaults and mapping (weight-only schemes, docs/quantization.md) ----

  /** Integer schemes get every default made explicit; fp16/bf16 casts keep only what was given. */
  private static QuantizeWeights normalizeWeights(QuantizeWeights w) {
    String dtype = w.getDtype() == null ? "int" : lower(w.getDtype());
    QuantizeWeights n = new QuantizeWeights().dtype(dtype);
    if (!"int".equals(dtype)) {
      return n.bits(w.getBits()).scheme(lower(w.getScheme())).granularity(lower(w.getGranularity()))
          .groupSize(w.getGroupSize()).range(lower(w.getRange())).format(lower(w.getFormat()))
          .symmetric(w.getSymmetric()).signed(w.getSigned());
    }
    String scheme = w.getScheme() == null ? "int" : lower(w.getScheme());
    String granularity = w.getGranularity() == null ? "channel" : lower(w.getGranularity());
    return n.scheme(scheme)
        .bits(w.getBits() != null ? w.getBits() : "ternary".equals(scheme) ? 2 : 8)
        .symmetric(w.getSymmetric() == null ? Boolean.TRUE : w.getSymmetric())
        .signed(w.getSigned() == null ? Boolean.TRUE : w.getSigned())
        .granularity(granularity)
        .groupSize(w.getGroupSize() == null && "group".equals(granularity) ? Integer.valueOf(32) : w.getGroupSize())
        .range(w.getRange() == null ? "minmax" : lower(w.getRange()))
        .format(w.getFormat() == null ? "auto" : lower(w.getFormat()));
  }

  static QuantizeSpec quantizeSpec(JobStep s, String at, List<ApiProblem.FieldError> errors) {
    // Steps stored before a field existed (or by older versions) read back without it: the same
    // defaults apply, so normalizing again is harmless.
    QuantizeWeights w = normalizeWeights(s.getWeights() == null ? new QuantizeWeights() : s.getWeights());
    String f = at + ".weights.";
    QuantizeSpec.WeightType dtype = parse(QuantizeSpec.WeightType.class, w.getDtype(), f + "dtype", "int, fp16 or bf16",
        errors, QuantizeSpec.WeightType.INT);
    if (dtype != QuantizeSpec.WeightType.INT) {
      String d = w.getDtype();
      for (var e : java.util.Map.of("bits", w.getBits() == null ? "" : "x", "scheme", nz(w.getScheme()),
          "granularity", nz(w.getGranularity()), "groupSize", w.getGroupSize() == null ? "" : "x",
          "range", nz(w.getRange()), "format", nz(w.getFormat())).entrySet()) {
        if (!e.getValue().isEmpty()) {
          errors.add(new ApiProblem.FieldError(f + e.getKey(), "not used with dtype " + d
              + ": fp16/bf16 weights are a plain cast (drop it, or use dtype int)"));
        }
      }
      return QuantizeSpec.cast(dtype).selecting(list(s.getInclude()), list(s.getExclude()));
    }
    QuantizeSpec.Scheme scheme = "int".equals(w.getScheme()) ? QuantizeSpec.Scheme.INTEGER
        : parse(QuantizeSpec.Scheme.class, w.getScheme(), f + "scheme", "int or ternary", errors,
            QuantizeSpec.Scheme.INTEGER);
    QuantizeSpec.Granularity granularity = parse(QuantizeSpec.Granularity.class, w.getGranularity(),
        f + "granularity", "channel, tensor or group", errors, QuantizeSpec.Granularity.CHANNEL);
    QuantizeSpec.RangeMethod range = parse(QuantizeSpec.RangeMethod.class, w.getRange(), f + "range", "minmax, mse, lsq or hqq",
        errors, QuantizeSpec.RangeMethod.MINMAX);
    QuantizeSpec.Format format = parse(QuantizeSpec.Format.class, w.getFormat(), f + "format",
        "auto, qdq or matmulnbits", errors, QuantizeSpec.Format.AUTO);
    return new QuantizeSpec(w.getBits(), w.getSymmetric(), granularity, list(s.getInclude()), list(s.getExclude()),
        w.getGroupSize(), scheme, w.getSigned(), dtype, range, format);
  }

  static <E extends Enum<E>> E parse(Class<E> type, String value, String field, String allowed,
      List<ApiProblem.FieldError> errors, E fallback) {
    for (E e : type.getEnumConstants()) {
      if (e.name().equalsIgnoreCase(value)) {
        return e;
      }
    }
    errors.add(new ApiProblem.FieldError(field, "must be " + allowed + ", not '" + value + "'"));
    return fallback;
  }

  private static String nz(String s) {
    return s == null ? "" : s;
  }

  /**
   * Maps normalized steps to specs.
   *
   * @throws ApiProblem VALIDATION_FAILED listing every invalid field, or NOT_IMPLEMENTED
   */
  public static List<StepSpec> toSpecs(List<JobStep> steps) {
    return toSpecs(steps, "steps");
  }

  /** As {@link #toSpecs(List)}, naming fields under {@code prefix} ({@code steps[0].space[3]}). */
  public static List<StepSpec> toSpecs(List<JobStep> steps, String prefix) {
    List<ApiProblem.FieldError> errors = new ArrayList<>();
    List<String> notBuilt = new ArrayList<>();
    List<StepSpec> specs = new ArrayList<>();
    for (int i = 0; i < steps.size(); i++) {
      JobStep s = steps.get(i);
      String at = prefix + "[" + i + "]";
      String type = s.getType();
      if (type == null) {
        errors.add(new ApiProblem.FieldError(at + ".type", "required: prune or quantize"));
        continue;
      }
      // ---- training steps (begin) ----
      if (TrainingSteps.isTraining(s)) {
        if (!"steps".equals(prefix)) {
          errors.add(new ApiProblem.FieldError(at + ".type", "a search cannot contain training steps"));
          continue;
        }
        if ("prune".equals(type)) {
          forbid(errors, at + ".weights", s.getWeights(), "l1 prune");
          forbid(errors, at + ".scope", "layer".equals(s.getScope()) ? null : s.getScope(), "l1 prune");
        } else if ("quantize".equals(type)) {
          forbid(errors, at + ".sparsity", s.getSparsity(), "qat quantize");
          forbid(errors, at + ".threshold", s.getThreshold(), "qat quantize");
        } else {
          forbid(errors, at + ".weights", s.getWeights(), type);
          forbid(errors, at + ".sparsity", s.getSparsity(), type);
          forbid(errors, at + ".threshold", s.getThreshold(), type);
          forbid(errors, at + ".method", s.getMethod(), type);
        }
        CalibratedSteps.forbid(s, at, type + " (training)", errors);
        forbidPruneFields(errors, at, s, type + " (training)");
        specs.add(TrainingSteps.toSpec(s, at, errors));
        continue;
      }
      TrainingSteps.forbid(s, at, errors);
      // ---- training steps (end) ----
      switch (type) {
        case "prune" -> {
          forbid(errors, at + ".weights", s.getWeights(), "prune");
          CalibratedSteps.forbid(s, at, "prune", errors);
          forbid(errors, at + ".clusters", s.getClusters(), "prune");
          forbid(errors, at + ".iterations", s.getIterations(), "prune");
          String method = s.getMethod();
          if ("activation".equals(method)) {
            errors.add(new ApiProblem.FieldError(at + ".method", "activation statistics rank whole channels: use "
                + "method structured with criterion activation (and a calibrationDatasetId)"));
            continue;
          }
          if (PruneSpec.CORRELATION.equals(method)) {
            forbid(errors, at + ".n", s.getN(), "correlation prune");
            forbid(errors, at + ".m", s.getM(), "correlation prune");
            forbid(errors, at + ".criterion", s.getCriterion(), "correlation prune");
            forbid(errors, at + ".unit", s.getUnit(), "correlation prune");
            if (!"layer".equals(s.getScope())) {
              errors.add(new ApiProblem.FieldError(at + ".scope", "correlation pruning works layer by layer; scope "
                  + "must be layer"));
            }
            specs.add(new PruneSpec(PruneSpec.CORRELATION, s.getSparsity(), s.getThreshold(), PruneSpec.Scope.LAYER,
                list(s.getInclude()), list(s.getExclude())));
            continue;
          }
          if (PruneSpec.WANDA.equals(method) || PruneSpec.SPARSEGPT.equals(method)) {
            forbid(errors, at + ".threshold", s.getThreshold(), method + " prune");
            forbid(errors, at + ".n", s.getN(), method + " prune");
            forbid(errors, at + ".m", s.getM(), method + " prune");
            forbid(errors, at + ".criterion", s.getCriterion(), method + " prune");
            forbid(errors, at + ".unit", s.getUnit(), method + " prune");
            if (s.getSparsity() == null) {
              errors.add(new ApiProblem.FieldError(at + ".sparsity", "required for " + method));
            }
            if (!"layer".equals(s.getScope())) {
              errors.add(new ApiProblem.FieldError(at + ".scope", method + " prunes each layer; scope must be layer"));
            }
            specs.add(new PruneSpec(method, s.getSparsity(), null, PruneSpec.Scope.LAYER, list(s.getInclude()),
                list(s.getExclude())));
            continue;
          }
          if (PruneSpec.NM.equals(method) || PruneSpec.STRUCTURED.equals(method)) {
            specs.add(pruneMethod(s, at, errors, notBuilt));
            continue;
          }
          forbid(errors, at + ".n", s.getN(), "magnitude prune");
          forbid(errors, at + ".m", s.getM(), "magnitude prune");
          forbid(errors, at + ".criterion", s.getCriterion(), "magnitude prune");
          forbid(errors, at + ".unit", s.getUnit(), "magnitude prune");
          if (!"magnitude".equals(s.getMethod())) {
            errors.add(new ApiProblem.FieldError(at + ".method",
                "unknown pruning method '" + s.getMethod() + "'; supported: magnitude, nm, structured, wanda, sparsegpt, correlation"));
          }
          PruneSpec.Scope scope = switch (s.getScope()) {
            case "layer" -> PruneSpec.Scope.LAYER;
            case "global" -> PruneSpec.Scope.GLOBAL;
            default -> {
              errors.add(new ApiProblem.FieldError(at + ".scope", "must be layer or global, not '" + s.getScope() + "'"));
              yield PruneSpec.Scope.LAYER;
            }
          };
          if ((s.getSparsity() == null) == (s.getThreshold() == null)) {
            errors.add(new ApiProblem.FieldError(at, "give exactly one of sparsity or threshold"));
          }
          specs.add(new PruneSpec("magnitude", s.getSparsity(), s.getThreshold(), scope, list(s.getInclude()),
              list(s.getExclude())));
        }
        case "quantize" -> {
          if (CalibratedSteps.isDataAware(s)) {
            specs.add(CalibratedSteps.toSpec(s, at, list(s.getInclude()), list(s.getExclude()), errors));
            continue;
          }
          // Plain weight-only quantization is round-to-nearest; other methods are data-aware.
          forbid(errors, at + ".method", "rtn".equals(s.getMethod()) ? null : s.getMethod(), "quantize");
          forbid(errors, at + ".sparsity", s.getSparsity(), "quantize");
          forbid(errors, at + ".threshold", s.getThreshold(), "quantize");
          forbid(errors, at + ".scope", s.getScope(), "quantize");
          forbidPruneFields(errors, at, s, "quantize");
          specs.add(quantizeSpec(s, at, errors));
        }
        case "share" -> {
          forbid(errors, at + ".method", s.getMethod(), "share");
          forbid(errors, at + ".sparsity", s.getSparsity(), "share");
          forbid(errors, at + ".threshold", s.getThreshold(), "share");
          forbid(errors, at + ".scope", s.getScope(), "share");
          forbid(errors, at + ".weights", s.getWeights(), "share");
          forbid(errors, at + ".n", s.getN(), "share");
          forbid(errors, at + ".m", s.getM(), "share");
          forbid(errors, at + ".criterion", s.getCriterion(), "share");
          forbid(errors, at + ".unit", s.getUnit(), "share");
          specs.add(new ShareSpec(s.getClusters(), s.getIterations(), list(s.getInclude()), list(s.getExclude())));
        }
        case SearchSpecs.TYPE -> {
          if (steps.size() != 1 || !"steps".equals(prefix)) {
            errors.add(new ApiProblem.FieldError(at + ".type", "a search must be the job's only step"));
          }
        }
        default -> errors.add(new ApiProblem.FieldError(at + ".type",
            "unknown step type '" + type + "'; supported: prune, quantize, share, search, distill, finetune"));
      }
    }
    if (!errors.isEmpty()) {
      throw validation(errors);
    }
    if (!notBuilt.isEmpty()) {
      throw new ApiProblem(ApiProblem.Kind.NOT_IMPLEMENTED, String.join("; ", notBuilt));
    }
    return specs;
  }

  private static void copyPruneFields(JobStep from, JobStep to) {
    to.setN(from.getN());
    to.setM(from.getM());
    to.setCriterion(from.getCriterion());
    to.setUnit(from.getUnit());
    to.setClusters(from.getClusters());
    to.setIterations(from.getIterations());
  }

  private static void forbidPruneFields(List<ApiProblem.FieldError> errors, String at, JobStep s, String type) {
    forbid(errors, at + ".n", s.getN(), type);
    forbid(errors, at + ".m", s.getM(), type);
    forbid(errors, at + ".criterion", s.getCriterion(), type);
    forbid(errors, at + ".unit", s.getUnit(), type);
    forbid(errors, at + ".clusters", s.getClusters(), type);
    forbid(errors, at + ".iterations", s.getIterations(), type);
  }

  /** An nm or structured prune step; values are checked by SpecValidator, fields here. */
  private static PruneSpec pruneMethod(JobStep s, String at, List<ApiProblem.FieldError> errors, List<String> notBuilt) {
    String kind = s.getMethod() + " prune";
    PruneSpec.Scope scope = "global".equals(s.getScope()) ? PruneSpec.Scope.GLOBAL : PruneSpec.Scope.LAYER;
    if (!"layer".equals(s.getScope()) && !"global".equals(s.getScope())) {
      errors.add(new ApiProblem.FieldError(at + ".scope", "must be layer or global, not '" + s.getScope() + "'"));
    }
    if (PruneSpec.NM.equals(s.getMethod())) {
      forbid(errors, at + ".criterion", s.getCriterion(), kind);
      forbid(errors, at + ".unit", s.getUnit(), kind);
      if (scope == PruneSpec.Scope.GLOBAL) {
        errors.add(new ApiProblem.FieldError(at + ".scope", "nm pruning applies to every group alike; use layer"));
      }
      return new PruneSpec(PruneSpec.NM, s.getSparsity(), s.getThreshold(), PruneSpec.Scope.LAYER,
          list(s.getInclude()), list(s.getExclude()), s.getN(), s.getM(), null, null);
    }
    forbid(errors, at + ".n", s.getN(), kind);
    forbid(errors, at + ".m", s.getM(), kind);
    PruneSpec.Criterion criterion = switch (s.getCriterion()) {
      case "l1" -> PruneSpec.Criterion.L1;
      case "l2" -> PruneSpec.Criterion.L2;
      case "activation" -> PruneSpec.Criterion.ACTIVATION; // needs calibrationDatasetId
      default -> {
        errors.add(new ApiProblem.FieldError(at + ".criterion", "must be l1, l2 or activation, not '"
            + s.getCriterion() + "'"));
        yield PruneSpec.Criterion.L1;
      }
    };
    PruneSpec.Target target = switch (s.getUnit()) {
      case "channels" -> PruneSpec.Target.CHANNELS;
      case "filters" -> PruneSpec.Target.FILTERS;
      case "neurons" -> PruneSpec.Target.NEURONS;
      case "heads" -> PruneSpec.Target.HEADS; // attention heads (HeadPruner)
      default -> {
        errors.add(new ApiProblem.FieldError(at + ".unit",
            "must be channels, filters, neurons or heads, not '" + s.getUnit() + "'"));
        yield PruneSpec.Target.CHANNELS;
      }
    };
    return new PruneSpec(PruneSpec.STRUCTURED, s.getSparsity(), s.getThreshold(), scope, list(s.getInclude()),
        list(s.getExclude()), null, null, criterion, target);
  }

  static ApiProblem validation(List<ApiProblem.FieldError> errors) {
    ApiProblem.FieldError first = errors.getFirst();
    String detail = errors.size() == 1 ? first.field() + ": " + first.message()
        : errors.size() + " fields are invalid; first: " + first.field() + ": " + first.message();
    return new ApiProblem(ApiProblem.Kind.VALIDATION_FAILED, detail, errors);
  }

  private static void forbid(List<ApiProblem.FieldError> errors, String field, Object value, String type) {
    if (value != null) {
      errors.add(new ApiProblem.FieldError(field, "not allowed in a " + type + " step"));
    }
  }

  private static List<String> list(List<String> l) {
    return l == null ? List.of() : List.copyOf(l);
  }

  private static String lower(String s) {
    return s == null ? null : s.toLowerCase(Locale.ROOT);
  }
}
