package dev.modelpress.job;

import dev.modelpress.api.dto.JobStep;
import dev.modelpress.api.dto.QuantizeWeights;
import dev.modelpress.compression.PruneSpec;
import dev.modelpress.compression.QuantizeSpec;
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
      } else {
        n.setMethod(s.getMethod());
        n.setSparsity(s.getSparsity());
        n.setThreshold(s.getThreshold());
        n.setScope(s.getScope());
        n.setWeights(s.getWeights());
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
          if (!"magnitude".equals(s.getMethod())) {
            errors.add(new ApiProblem.FieldError(at + ".method",
                "unknown pruning method '" + s.getMethod() + "'; supported: magnitude"));
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
        case "distill" -> notBuilt.add(at + ".type: knowledge distillation is not built yet");
        default -> errors.add(new ApiProblem.FieldError(at + ".type",
            "unknown step type '" + type + "'; supported: prune, quantize (distill is planned)"));
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
