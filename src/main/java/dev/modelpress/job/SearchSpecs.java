package dev.modelpress.job;

import dev.modelpress.api.dto.JobStep;
import dev.modelpress.api.dto.QuantizeWeights;
import dev.modelpress.api.dto.SearchBudget;
import dev.modelpress.api.dto.SearchConstraint;
import dev.modelpress.compression.SpecValidator;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.system.ApiProblem;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The {@code search} step: an objective, a constraint on the evaluation data, a budget and a space
 * of candidate recipes. A recipe is a list of ordinary steps, so every method the pipeline learns
 * joins the search as data: put it in a recipe, or in {@link #defaultSpace()}. See docs/search.md.
 */
public final class SearchSpecs {

  /** The step type. */
  public static final String TYPE = "search";

  static final int DEFAULT_TRIALS = 20;
  static final int MAX_TRIALS = 200;
  static final int DEFAULT_SECONDS = 600;
  static final int MAX_SECONDS = 86_400;

  private SearchSpecs() {}

  /**
   * A validated search as the worker runs it.
   *
   * @param objective {@code size} or {@code latency}
   * @param metric {@code accuracyDrop} (percentage points), {@code cosine} or {@code top1Agreement}
   * @param bound the constraint's limit
   * @param atMost whether the metric must be at most {@code bound} (accuracyDrop) or at least it
   * @param space candidate recipes, normalized
   */
  public record Search(String objective, String metric, double bound, boolean atMost, int trials, int seconds,
      List<List<JobStep>> space) {

    /** Whether a measured value meets the constraint. */
    public boolean meets(Double value) {
      return value != null && !value.isNaN() && (atMost ? value <= bound : value >= bound);
    }

    /** How far a value is from meeting the constraint (0 when it meets it), for ranking near misses. */
    public double shortfall(Double value) {
      if (value == null || value.isNaN()) {
        return Double.POSITIVE_INFINITY;
      }
      return Math.max(0, atMost ? value - bound : bound - value);
    }
  }

  /** Reads a normalized, validated search step. */
  public static Search read(JobStep step) {
    SearchConstraint c = step.getConstraint();
    boolean atMost = "accuracyDrop".equals(c.getMetric());
    return new Search(step.getObjective(), c.getMetric(), atMost ? c.getMax() : c.getMin(), atMost,
        step.getBudget().getTrials(), step.getBudget().getSeconds(), step.getSpace());
  }

  /** Copies the search fields with defaults made explicit; the space stays absent until {@link #resolve}. */
  static void normalizeInto(JobStep s, JobStep n) {
    n.setObjective(s.getObjective() == null ? "size" : s.getObjective().toLowerCase(Locale.ROOT));
    n.setConstraint(s.getConstraint());
    SearchBudget b = s.getBudget() == null ? new SearchBudget() : s.getBudget();
    n.setBudget(new SearchBudget()
        .trials(b.getTrials() == null ? DEFAULT_TRIALS : b.getTrials())
        .seconds(b.getSeconds() == null ? DEFAULT_SECONDS : b.getSeconds()));
    // The generated DTO starts lists empty, so an absent space arrives as []: both mean the default.
    n.setSpace(s.getSpace() == null || s.getSpace().isEmpty() ? null
        : s.getSpace().stream().map(JobSpecs::normalize).toList());
    // Fields of ordinary steps mean nothing on a search; keeping them would let a typo pass silently.
    n.setMethod(s.getMethod());
    n.setSparsity(s.getSparsity());
    n.setThreshold(s.getThreshold());
    n.setScope(s.getScope());
    n.setWeights(s.getWeights());
  }

  /**
   * Validates a normalized search step against the model and fills the default space when none was
   * given (keeping only the default recipes that are valid for this model).
   *
   * @param evaluation whether the job names an evaluation dataset
   * @param labels whether that dataset has labels
   * @return the step to store, with an explicit space
   * @throws ApiProblem VALIDATION_FAILED naming every field at fault ({@code steps[0].space[3][1].sparsity}),
   *     or NOT_IMPLEMENTED when a recipe asks for a method not built yet
   */
  static JobStep resolve(JobStep step, ModelSummary model, boolean evaluation, boolean labels) {
    String at = "steps[0]";
    List<ApiProblem.FieldError> errors = new ArrayList<>();
    for (String f : List.of("method", "sparsity", "threshold", "scope", "weights")) {
      Object v = switch (f) {
        case "method" -> step.getMethod();
        case "sparsity" -> step.getSparsity();
        case "threshold" -> step.getThreshold();
        case "scope" -> step.getScope();
        default -> step.getWeights();
      };
      if (v != null) {
        errors.add(new ApiProblem.FieldError(at + "." + f, "not allowed in a search step; put it in a recipe of space"));
      }
    }
    if (!"size".equals(step.getObjective()) && !"latency".equals(step.getObjective())) {
      errors.add(new ApiProblem.FieldError(at + ".objective", "must be size or latency, not '" + step.getObjective() + "'"));
    }
    SearchConstraint c = step.getConstraint();
    if (c == null || c.getMetric() == null) {
      errors.add(new ApiProblem.FieldError(at + ".constraint",
          "required: {metric: accuracyDrop, max} or {metric: cosine|top1Agreement, min}"));
    } else {
      switch (c.getMetric()) {
        case "accuracyDrop" -> {
          if (c.getMax() == null || c.getMin() != null || !(c.getMax() >= 0 && c.getMax() <= 100)) {
            errors.add(new ApiProblem.FieldError(at + ".constraint.max",
                "accuracyDrop takes max only, in percentage points from 0 to 100"));
          }
          if (evaluation && !labels) {
            errors.add(new ApiProblem.FieldError("evaluationDatasetId",
                "accuracyDrop needs a labels array in the evaluation dataset"));
          }
        }
        case "cosine", "top1Agreement" -> {
          if (c.getMin() == null || c.getMax() != null || !(c.getMin() >= -1 && c.getMin() <= 1)) {
            errors.add(new ApiProblem.FieldError(at + ".constraint.min",
                c.getMetric() + " takes min only, a number up to 1"));
          }
        }
        default -> errors.add(new ApiProblem.FieldError(at + ".constraint.metric",
            "must be accuracyDrop, cosine or top1Agreement, not '" + c.getMetric() + "'"));
      }
    }
    SearchBudget b = step.getBudget();
    if (b.getTrials() < 1 || b.getTrials() > MAX_TRIALS) {
      errors.add(new ApiProblem.FieldError(at + ".budget.trials", "must be 1 to " + MAX_TRIALS + ", not " + b.getTrials()));
    }
    if (b.getSeconds() < 1 || b.getSeconds() > MAX_SECONDS) {
      errors.add(new ApiProblem.FieldError(at + ".budget.seconds",
          "must be 1 to " + MAX_SECONDS + ", not " + b.getSeconds()));
    }
    if (!evaluation) {
      errors.add(new ApiProblem.FieldError("evaluationDatasetId", "a search measures every candidate: required"));
    }
    List<List<JobStep>> space;
    if (step.getSpace() == null) {
      space = new ArrayList<>();
      for (List<JobStep> recipe : defaultSpace()) {
        try {
          List<JobStep> normalized = JobSpecs.normalize(recipe);
          if (SpecValidator.validate(JobSpecs.toSpecs(normalized), model).isEmpty()) {
            space.add(normalized);
          }
        } catch (ApiProblem e) {
          // A default recipe this model cannot take is simply not part of its space.
        }
      }
      if (space.isEmpty()) {
        errors.add(new ApiProblem.FieldError(at + ".space", "no default recipe applies to this model; give a space"));
      }
    } else {
      space = step.getSpace();
      for (int r = 0; r < space.size(); r++) {
        String prefix = at + ".space[" + r + "]";
        List<JobStep> recipe = space.get(r);
        if (recipe == null || recipe.isEmpty()) {
          errors.add(new ApiProblem.FieldError(prefix, "a recipe needs at least one step"));
          continue;
        }
        List<StepSpec> specs;
        try {
          specs = JobSpecs.toSpecs(recipe, prefix);
        } catch (ApiProblem e) {
          if (e.kind() != ApiProblem.Kind.VALIDATION_FAILED) {
            throw e;
          }
          errors.addAll(e.errors());
          continue;
        }
        SpecValidator.validate(specs, model).forEach(v -> errors.add(new ApiProblem.FieldError(
            v.field().startsWith("steps") ? prefix + v.field().substring("steps".length()) : prefix + "." + v.field(),
            v.message())));
      }
    }
    if (!errors.isEmpty()) {
      throw JobSpecs.validation(errors);
    }
    JobStep out = new JobStep(TYPE);
    out.setObjective(step.getObjective());
    out.setConstraint(c);
    out.setBudget(b);
    out.setSpace(space);
    return out;
  }

  /**
   * The recipes tried when a search names no space: uniform pruning levels, int8 weights, N:M 2:4,
   * structured channel removal, and their combinations with int8. Recipes the model cannot take
   * (structured pruning where the graph does not allow it, say) are dropped per model.
   */
  public static List<List<JobStep>> defaultSpace() {
    List<List<JobStep>> space = new ArrayList<>();
    space.add(List.of(int8("channel")));
    space.add(List.of(int8("tensor")));
    for (double s : new double[] {0.3, 0.5, 0.7}) {
      space.add(List.of(magnitude(s)));
    }
    space.add(List.of(magnitude(0.5), int8("channel")));
    space.add(List.of(magnitude(0.7), int8("channel")));
    space.add(List.of(new JobStep("prune").method("nm").n(2).m(4)));
    space.add(List.of(new JobStep("prune").method("nm").n(2).m(4), int8("channel")));
    for (double s : new double[] {0.25, 0.5}) {
      space.add(List.of(new JobStep("prune").method("structured").sparsity(s)));
    }
    space.add(List.of(new JobStep("prune").method("structured").sparsity(0.25), int8("channel")));
    return space;
  }

  private static JobStep magnitude(double sparsity) {
    return new JobStep("prune").method("magnitude").sparsity(sparsity);
  }

  private static JobStep int8(String granularity) {
    return new JobStep("quantize").weights(new QuantizeWeights().bits(8).granularity(granularity));
  }
}
