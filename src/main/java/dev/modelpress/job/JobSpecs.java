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
import java.util.Set;

/**
 * Translates the API's step objects into compression specs, filling defaults and collecting every
 * field error with its path ({@code steps[1].sparsity}). Requests for methods that are valid in the
 * field but not built here yet are 501, not 422.
 */
public final class JobSpecs {

  private static final Set<Integer> PLANNED_BITS = Set.of(1, 2, 4);

  private JobSpecs() {}

  /** The steps with defaults made explicit, as stored and echoed back by the API. */
  static List<JobStep> normalize(List<JobStep> steps) {
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
        // ---- w2-prune (begin) ----
        n.setN(s.getN());
        n.setM(s.getM());
        n.setClusters(s.getClusters());
        n.setIterations(s.getIterations());
        boolean structured = PruneSpec.STRUCTURED.equals(n.getMethod());
        n.setCriterion(s.getCriterion() == null && structured ? "l1" : lower(s.getCriterion()));
        n.setUnit(s.getUnit() == null && structured ? "channels" : lower(s.getUnit()));
        // ---- w2-prune (end) ----
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
      } else if ("quantize".equals(n.getType())) {
        QuantizeWeights w = s.getWeights() == null ? new QuantizeWeights() : s.getWeights();
        n.setWeights(new QuantizeWeights()
            .bits(w.getBits() == null ? 8 : w.getBits())
            .symmetric(w.getSymmetric() == null ? Boolean.TRUE : w.getSymmetric())
            .granularity(w.getGranularity() == null ? "channel" : lower(w.getGranularity())));
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
      out.add(n);
    }
    return out;
  }

  /**
   * Maps normalized steps to specs.
   *
   * @throws ApiProblem VALIDATION_FAILED listing every invalid field, or NOT_IMPLEMENTED
   */
  public static List<StepSpec> toSpecs(List<JobStep> steps) {
    List<ApiProblem.FieldError> errors = new ArrayList<>();
    List<String> notBuilt = new ArrayList<>();
    List<StepSpec> specs = new ArrayList<>();
    for (int i = 0; i < steps.size(); i++) {
      JobStep s = steps.get(i);
      String at = "steps[" + i + "]";
      String type = s.getType();
      if (type == null) {
        errors.add(new ApiProblem.FieldError(at + ".type", "required: prune or quantize"));
        continue;
      }
      switch (type) {
        case "prune" -> {
          forbid(errors, at + ".weights", s.getWeights(), "prune");
          CalibratedSteps.forbid(s, at, "prune", errors);
          // ---- w2-prune (begin) ----
          forbid(errors, at + ".clusters", s.getClusters(), "prune");
          forbid(errors, at + ".iterations", s.getIterations(), "prune");
          String method = s.getMethod();
          if (PLANNED_PRUNING.contains(method)) {
            notBuilt.add(at + ".method: " + method + " needs calibration data and is not built yet; use magnitude, "
                + "nm or structured");
            continue;
          }
          // ---- w3-wanda (begin) ----
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
          // ---- w3-wanda (end) ----
          if (PruneSpec.NM.equals(method) || PruneSpec.STRUCTURED.equals(method)) {
            specs.add(pruneMethod(s, at, errors, notBuilt));
            continue;
          }
          forbid(errors, at + ".n", s.getN(), "magnitude prune");
          forbid(errors, at + ".m", s.getM(), "magnitude prune");
          forbid(errors, at + ".criterion", s.getCriterion(), "magnitude prune");
          forbid(errors, at + ".unit", s.getUnit(), "magnitude prune");
          // ---- w2-prune (end) ----
          if (!"magnitude".equals(s.getMethod())) {
            errors.add(new ApiProblem.FieldError(at + ".method",
                "unknown pruning method '" + s.getMethod() + "'; supported: magnitude, nm, structured, wanda, sparsegpt"));
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
          QuantizeWeights w = s.getWeights();
          int bits = w.getBits();
          if (PLANNED_BITS.contains(bits)) {
            notBuilt.add(at + ".weights.bits: " + bits + "-bit weights are not built yet; use 8");
          } else if (bits != 8) {
            errors.add(new ApiProblem.FieldError(at + ".weights.bits", "must be 8 (1, 2 and 4 are planned), not " + bits));
          }
          QuantizeSpec.Granularity granularity = switch (w.getGranularity()) {
            case "channel" -> QuantizeSpec.Granularity.CHANNEL;
            case "tensor" -> QuantizeSpec.Granularity.TENSOR;
            default -> {
              errors.add(new ApiProblem.FieldError(at + ".weights.granularity",
                  "must be channel or tensor, not '" + w.getGranularity() + "'"));
              yield QuantizeSpec.Granularity.CHANNEL;
            }
          };
          specs.add(new QuantizeSpec(8, w.getSymmetric(), granularity, list(s.getInclude()), list(s.getExclude())));
        }
        // ---- w2-prune (begin) ----
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
        // ---- w2-prune (end) ----
        case "distill" -> notBuilt.add(at + ".type: knowledge distillation is not built yet");
        default -> errors.add(new ApiProblem.FieldError(at + ".type",
            "unknown step type '" + type + "'; supported: prune, quantize, share (distill is planned)"));
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

  // ---- w2-prune (begin) ----

  /** Data-aware pruning methods that are planned (they need a calibration dataset). */
  private static final Set<String> PLANNED_PRUNING = Set.of("correlation", "activation");

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
      default -> {
        errors.add(new ApiProblem.FieldError(at + ".criterion", "must be l1 or l2, not '" + s.getCriterion() + "'"
            + (s.getCriterion().equals("activation") ? " (activation statistics need calibration data: planned)" : "")));
        yield PruneSpec.Criterion.L1;
      }
    };
    PruneSpec.Target target = switch (s.getUnit()) {
      case "channels" -> PruneSpec.Target.CHANNELS;
      case "filters" -> PruneSpec.Target.FILTERS;
      case "neurons" -> PruneSpec.Target.NEURONS;
      case "heads" -> {
        notBuilt.add(at + ".target: removing attention heads is not built yet; use channels, filters or neurons");
        yield PruneSpec.Target.CHANNELS;
      }
      default -> {
        errors.add(new ApiProblem.FieldError(at + ".unit",
            "must be channels, filters or neurons, not '" + s.getUnit() + "'"));
        yield PruneSpec.Target.CHANNELS;
      }
    };
    return new PruneSpec(PruneSpec.STRUCTURED, s.getSparsity(), s.getThreshold(), scope, list(s.getInclude()),
        list(s.getExclude()), null, null, criterion, target);
  }

  // ---- w2-prune (end) ----

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
