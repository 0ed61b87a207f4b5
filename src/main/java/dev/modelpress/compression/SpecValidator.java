package dev.modelpress.compression;

import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.TensorInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Checks a job's steps against the model's catalogue before the job is queued, so impossible
 * values and patterns that select nothing fail at submit time with the field at fault. The
 * pipeline repeats the selection at run time and would fail the same way, later.
 */
public final class SpecValidator {

  private SpecValidator() {}

  /** Every problem found, for a job without calibration data; empty when the steps can run on the model. */
  public static List<Violation> validate(List<StepSpec> steps, ModelSummary model) {
    return validate(steps, model, false);
  }

  /**
   * Every problem found; empty when the steps can run on the model.
   *
   * @param hasCalibration whether the job names a calibration dataset (checked separately against
   *     the model inputs); data-aware steps without one are a violation of {@code calibrationDatasetId}
   */
  public static List<Violation> validate(List<StepSpec> steps, ModelSummary model, boolean hasCalibration) {
    List<Violation> violations = new ArrayList<>();
    if (steps == null || steps.isEmpty()) {
      violations.add(new Violation("steps", "at least one step is required"));
      return violations;
    }
    boolean quantized = false;
    boolean shared = false;
    for (int i = 0; i < steps.size(); i++) {
      String at = "steps[" + i + "]";
      StepSpec step = steps.get(i);
      if (step == null) {
        violations.add(new Violation(at, "must not be null"));
        continue;
      }
      if (quantized) {
        violations.add(new Violation(at, "a " + step.type() + " step cannot follow a quantize step: "
            + "quantized weights are no longer float initializers; put quantize last"));
      }
      if (shared && step instanceof QuantizeSpec) {
        violations.add(new Violation(at, "a quantize step cannot follow a share step: the Deep Compression archive "
            + "codes the shared float weights; share is the last step that changes weight values"));
      }
      switch (step) {
        case PruneSpec p when p.method().equals(PruneSpec.WANDA) || p.method().equals(PruneSpec.SPARSEGPT) ->
            validateActivationPrune(p, at, hasCalibration, violations);
        case PruneSpec p when p.method().equals(PruneSpec.CORRELATION) ->
            validateCorrelation(p, at, hasCalibration, violations);
        case PruneSpec p when p.method().equals(PruneSpec.STRUCTURED) && p.criterion() == PruneSpec.Criterion.ACTIVATION -> {
          if (!hasCalibration) {
            violations.add(new Violation("calibrationDatasetId", at + " (structured pruning by activation) needs a "
                + "calibration dataset: channels are ranked by their mean |activation| on it"));
          }
          validatePrune(p, at, violations);
        }
        case PruneSpec p -> validatePrune(p, at, violations);
        case QuantizeSpec q -> validateQuantize(q, at, model.opsets().getOrDefault("", 0L), violations);
        case ShareSpec sh -> validateShare(sh, at, violations);
        case CalibratedQuantizeSpec c -> validateCalibrated(c, at, model, hasCalibration, violations);
        case TrainSpec t -> validateTraining(t, at, model, violations);
      }
      quantized |= step instanceof QuantizeSpec || step instanceof CalibratedQuantizeSpec
          || step instanceof TrainSpec t && t.kind() == TrainSpec.Kind.QAT;
      shared |= step instanceof ShareSpec;
      validateSelection(step, at, TensorSelector.reachable(step, model.tensors()), violations);
    }
    return violations;
  }

  /** Training steps: the fields JobSpecs cannot check alone (the quantize scheme of QAT, pruning targets). */
  private static void validateTraining(TrainSpec t, String at, ModelSummary model, List<Violation> out) {
    if (t.kind() == TrainSpec.Kind.QAT && t.quantize() != null) {
      validateQuantize(t.quantize(), at, model.opsets().getOrDefault("", 0L), out);
    }
    if (t.kind() == TrainSpec.Kind.L1_PRUNE) {
      if ((t.sparsity() == null) == (t.threshold() == null)) {
        out.add(new Violation(at, "give exactly one of sparsity or threshold: what the L1 penalty drove small is "
            + "pruned to it after training"));
      }
      if (t.sparsity() != null && !(t.sparsity() >= 0 && t.sparsity() < 1)) {
        out.add(new Violation(at + ".sparsity", "must be at least 0 and below 1 (got " + t.sparsity() + ")"));
      }
      if (t.threshold() != null && !(t.threshold() >= 0) ) {
        out.add(new Violation(at + ".threshold", "must be a non-negative number (got " + t.threshold() + ")"));
      }
    }
  }

  private static void validateActivationPrune(PruneSpec p, String at, boolean hasCalibration, List<Violation> out) {
    if (!hasCalibration) {
      out.add(new Violation("calibrationDatasetId", at + " (" + p.method() + " pruning) needs a calibration "
          + "dataset: its weights are scored with the layers' input activations"));
    }
    if (p.threshold() != null) {
      out.add(new Violation(at + ".threshold", p.method() + " prunes to a sparsity, not a threshold"));
    }
    if (p.scope() != PruneSpec.Scope.LAYER) {
      out.add(new Violation(at + ".scope", p.method() + " prunes every layer to the sparsity; scope must be layer"));
    }
    if (p.sparsity() == null) {
      out.add(new Violation(at + ".sparsity", "required for " + p.method()));
    } else if (!(p.sparsity() >= 0 && p.sparsity() < 1)) {
      out.add(new Violation(at + ".sparsity", "must be at least 0 and below 1 (got " + p.sparsity() + ")"));
    }
  }

  // package-private so SafetensorsPipeline.check applies the same value rules
  static void validatePrune(PruneSpec p, String at, List<Violation> out) {
    switch (p.method()) {
      case PruneSpec.MAGNITUDE -> {}
      case PruneSpec.NM -> {
        validateNm(p, at, out);
        return;
      }
      case PruneSpec.STRUCTURED -> {
        validateStructured(p, at, out);
        return;
      }
      default -> {
        out.add(new Violation(at + ".method", "unknown pruning method '" + p.method()
            + "'; supported: magnitude, nm, structured, wanda, sparsegpt, correlation"));
        return;
      }
    }
    if (p.sparsity() != null && p.threshold() != null) {
      out.add(new Violation(at, "give either sparsity or threshold, not both"));
    } else if (p.sparsity() == null && p.threshold() == null) {
      out.add(new Violation(at + ".sparsity", "either sparsity or threshold is required"));
    }
    if (p.sparsity() != null) {
      double s = p.sparsity();
      if (!(s >= 0 && s < 1)) {
        out.add(new Violation(at + ".sparsity", "must be at least 0 and below 1 (got " + s + ")"));
      }
    }
    if (p.threshold() != null) {
      double t = p.threshold();
      if (!(t >= 0) || Double.isInfinite(t)) {
        out.add(new Violation(at + ".threshold", "must be a finite number at least 0 (got " + t + ")"));
      }
    }
  }

  private static void validateCorrelation(PruneSpec p, String at, boolean hasCalibration, List<Violation> out) {
    if (!hasCalibration) {
      out.add(new Violation("calibrationDatasetId", at + " (correlation pruning) needs a calibration dataset: "
          + "redundant neurons are found from their activations on it"));
    }
    if (p.sparsity() != null && p.threshold() != null) {
      out.add(new Violation(at, "give either sparsity (fraction of each layer's neurons removed) or threshold "
          + "(minimum |Pearson r| with a kept twin), not both"));
    }
    if (p.sparsity() != null && !(p.sparsity() > 0 && p.sparsity() < 1)) {
      out.add(new Violation(at + ".sparsity", "must be above 0 and below 1 (got " + p.sparsity() + ")"));
    }
    if (p.threshold() != null && !(p.threshold() > 0 && p.threshold() <= 1)) {
      out.add(new Violation(at + ".threshold", "is the minimum |Pearson r| of a removed neuron with its twin: above 0 "
          + "and at most 1 (got " + p.threshold() + ")"));
    }
    if (p.scope() == PruneSpec.Scope.GLOBAL) {
      out.add(new Violation(at + ".scope", "correlation pruning works layer by layer; use layer"));
    }
  }

  /** Largest group size M accepted for N:M pruning. */
  static final int MAX_M = 64;

  private static void validateNm(PruneSpec p, String at, List<Violation> out) {
    if (p.m() == null) {
      out.add(new Violation(at + ".m", "required for nm pruning (e.g. 4 for 2:4)"));
    } else if (p.m() < 2 || p.m() > MAX_M) {
      out.add(new Violation(at + ".m", "must be between 2 and " + MAX_M + " (got " + p.m() + ")"));
    }
    if (p.n() == null) {
      out.add(new Violation(at + ".n", "required for nm pruning (e.g. 2 for 2:4)"));
    } else if (p.n() < 1 || (p.m() != null && p.n() >= p.m())) {
      out.add(new Violation(at + ".n", "must be at least 1 and below m" + (p.m() == null ? "" : " = " + p.m())
          + " (got " + p.n() + ")"));
    }
    if (p.sparsity() != null || p.threshold() != null) {
      out.add(new Violation(at, "nm pruning takes n and m, not sparsity or threshold (its sparsity is 1 - n/m)"));
    }
  }

  private static void validateStructured(PruneSpec p, String at, List<Violation> out) {
    if (p.threshold() != null) {
      out.add(new Violation(at + ".threshold", "structured pruning takes sparsity (the fraction of channels to "
          + "remove), not threshold"));
    }
    if (p.sparsity() == null) {
      out.add(new Violation(at + ".sparsity", "required: the fraction of each layer's output channels to remove"));
    } else if (!(p.sparsity() > 0 && p.sparsity() < 1)) {
      out.add(new Violation(at + ".sparsity", "must be above 0 and below 1 (got " + p.sparsity() + ")"));
    }
    if (p.scope() == PruneSpec.Scope.GLOBAL) {
      out.add(new Violation(at + ".scope", "structured pruning removes the same fraction of every layer; use layer"));
    }
    // heads are ranked by their weights' norms only.
    if (p.target() == PruneSpec.Target.HEADS && p.criterion() == PruneSpec.Criterion.ACTIVATION) {
      out.add(new Violation(at + ".criterion", "attention heads are ranked by the l1 or l2 norm of their weights; "
          + "activation applies to channels, filters and neurons"));
    }
  }

  private static void validateShare(ShareSpec s, String at, List<Violation> out) {
    if (s.clusters() < ShareSpec.MIN_CLUSTERS || s.clusters() > ShareSpec.MAX_CLUSTERS) {
      out.add(new Violation(at + ".clusters", "must be between " + ShareSpec.MIN_CLUSTERS + " and "
          + ShareSpec.MAX_CLUSTERS + " centroids per tensor (got " + s.clusters() + ")"));
    }
    if (s.iterations() < 1 || s.iterations() > 1000) {
      out.add(new Violation(at + ".iterations", "must be between 1 and 1000 (got " + s.iterations() + ")"));
    }
  }

  /**
   * N:M groups must tile the input axis where the catalogue shows which axis that is. Only for an
   * explicit selection: the default one also drops the final classifier, which needs the graph the
   * catalogue does not have, so there the run-time check (same message) decides.
   */
  private static void checkNmGroups(PruneSpec p, TensorInfo t, String field, List<Violation> out) {
    if (p.m() == null || p.m() < 2 || p.m() > MAX_M || p.include().isEmpty()) {
      return;
    }
    List<Long> shape = t.shape();
    Long k = null;
    for (String c : t.consumers()) {
      Integer axis = c.startsWith("Gemm:") ? null : NmPruner.reductionAxis(c, shape.size(), false);
      if (axis != null) {
        k = shape.get(axis);
        break;
      }
    }
    if (k != null && k % p.m() != 0) {
      out.add(new Violation(field, "tensor '" + t.name() + "' has " + k + " weights along its input axis, not a "
          + "multiple of m = " + p.m() + "; exclude it or choose another m"));
    }
  }

  // ---- weight-only quantization schemes (bits, grid, granularity, group, dtype, format) ----

  // package-private so SafetensorsPipeline.check applies the same value rules
  static void validateQuantize(QuantizeSpec q, String at, long opset, List<Violation> out) {
    String w = at + ".weights";
    if (!q.isInteger()) {
      if (q.bits() != 16) {
        out.add(new Violation(w + ".bits", "dtype " + dtype(q) + " stores 16-bit floats; leave bits out (got " + q.bits()
            + ")"));
      }
      if (q.scheme() != QuantizeSpec.Scheme.INTEGER || q.groupSize() != null
          || q.range() != QuantizeSpec.RangeMethod.MINMAX || q.format() != QuantizeSpec.Format.AUTO) {
        out.add(new Violation(w + ".dtype", "dtype " + dtype(q)
            + " is a plain cast: scheme, groupSize, range and format apply to dtype int only"));
      }
      if (q.dtype() == QuantizeSpec.WeightType.BF16 && opset < 13) {
        out.add(new Violation(w + ".dtype", "bf16 weights need a Cast from BFLOAT16, which ai.onnx has from opset 13; "
            + "the model imports opset " + opset + " (use fp16)"));
      }
      return;
    }
    boolean ternary = q.scheme() == QuantizeSpec.Scheme.TERNARY;
    if (ternary && q.bits() != 2) {
      out.add(new Violation(w + ".bits", "ternary codes {-1, 0, +1} are stored in 2 bits; use bits 2 (got " + q.bits()
          + ")"));
    } else if (q.bits() != 1 && q.bits() != 2 && q.bits() != 4 && q.bits() != 8) {
      out.add(new Violation(w + ".bits", "must be 1 (binary), 2, 4 or 8 (got " + q.bits() + ")"));
    }
    if ((ternary || q.bits() == 1) && !q.symmetric()) {
      out.add(new Violation(w + ".symmetric", (ternary ? "ternary" : "binary (1-bit)")
          + " weights are sign × scale and have no zero point; symmetric must be true"));
    }
    if (q.granularity() == QuantizeSpec.Granularity.GROUP) {
      if (q.groupSize() == null || !QuantizeSpec.GROUP_SIZES.contains(q.groupSize())) {
        out.add(new Violation(w + ".groupSize", "must be one of " + QuantizeSpec.GROUP_SIZES + " for granularity group"
            + (q.groupSize() == null ? "" : " (got " + q.groupSize() + ")")));
      }
    } else if (q.groupSize() != null) {
      out.add(new Violation(w + ".groupSize", "applies to granularity group only (granularity is "
          + q.granularity().name().toLowerCase(java.util.Locale.ROOT) + ")"));
    }
    if ((q.range() == QuantizeSpec.RangeMethod.LSQ || q.range() == QuantizeSpec.RangeMethod.HQQ)
        && (ternary || q.bits() == 1)) {
      out.add(new Violation(w + ".range", "lsq and hqq refine the scale and zero point of integer grids (bits 2, 4 "
          + "or 8, scheme int); binary and ternary weights take minmax or mse"));
    }
    if (q.format() == QuantizeSpec.Format.MATMULNBITS
        && (q.bits() != 4 || ternary || q.granularity() != QuantizeSpec.Granularity.GROUP)) {
      out.add(new Violation(w + ".format", "matmulnbits holds 4-bit integer weights in groups; it needs bits 4 and "
          + "granularity group"));
    }
    boolean subByte = q.bits() < 8 || ternary;
    if ((subByte || q.granularity() == QuantizeSpec.Granularity.GROUP) && opset < 11) {
      out.add(new Violation(w + (subByte ? ".bits" : ".granularity"), "the model imports ai.onnx opset " + opset
          + "; packed or grouped weights are unpacked with BitShift/Reshape/Slice, which need opset 11 or later"));
    }
  }

  private static String dtype(QuantizeSpec q) {
    return q.dtype().name().toLowerCase(java.util.Locale.ROOT);
  }

  // ---- data-aware quantization (static activations, GPTQ, sensitivity, mixed precision) ----

  private static void validateCalibrated(CalibratedQuantizeSpec c, String at, ModelSummary model, boolean hasCalibration,
      List<Violation> out) {
    if (!hasCalibration) {
      out.add(new Violation("calibrationDatasetId", at + " (" + CalibratedQuantization.describe(c)
          + ") runs the model on calibration data: upload an .npz named after the model inputs and give its id"));
    }
    int bits = c.weights().bits();
    CalibratedQuantizeSpec.Activations a = c.activations();
    if (c.weights().granularity() == QuantizeSpec.Granularity.GROUP) {
      // Grouped weights: GPTQ only, written by the weight-only encoder (its checks apply).
      if (a != null || c.target() != null || c.sensitivity() || c.method() != CalibratedQuantizeSpec.Method.GPTQ) {
        out.add(new Violation(at + ".weights.granularity", "group applies to weight-only round-to-nearest and to method "
            + "gptq; static activations, sensitivity and mixed precision use channel or tensor weights"));
      }
      validateQuantize(c.weights(), at, model.opsets().getOrDefault("", 0L), out);
    }
    if (a != null) {
      if (bits != 8) {
        out.add(new Violation(at + ".weights.bits", "static quantization uses 8-bit weights (got " + bits + ")"));
      }
      if (c.method() == CalibratedQuantizeSpec.Method.GPTQ) {
        out.add(new Violation(at + ".method", "gptq with static activations is not supported; use one or the other"));
      }
      if (c.target() != null) {
        out.add(new Violation(at + ".target", "mixed precision applies to weight-only quantization, not with activations"));
      }
      if (a.calibrator() == CalibratedQuantizeSpec.Calibrator.PERCENTILE && !(a.percentile() > 0 && a.percentile() <= 100)) {
        out.add(new Violation(at + ".activations.percentile", "must be above 0 and at most 100 (got " + a.percentile() + ")"));
      }
      Long opset = model.opsets().get("");
      if (opset != null && opset < 10) {
        out.add(new Violation(at + ".activations", "static quantization needs ai.onnx opset 10 or later "
            + "(QuantizeLinear); the model imports opset " + opset));
      }
    } else if (bits < 2 || bits > 8) {
      out.add(new Violation(at + ".weights.bits", "must be between 2 and 8 for " + CalibratedQuantization.describe(c)
          + " (got " + bits + ")"));
    }
    CalibratedQuantizeSpec.FidelityTarget t = c.target();
    if (t != null) {
      if (t.metric() == CalibratedQuantizeSpec.Metric.COSINE && !(t.threshold() > -1 && t.threshold() <= 1)) {
        out.add(new Violation(at + ".target.min", "a cosine target must be in (-1, 1] (got " + t.threshold() + ")"));
      }
      if (t.metric() == CalibratedQuantizeSpec.Metric.MSE && !(t.threshold() >= 0 && Double.isFinite(t.threshold()))) {
        out.add(new Violation(at + ".target.max", "an mse target must be a finite number at least 0 (got " + t.threshold() + ")"));
      }
      if (t.higherBits() != 8 && t.higherBits() != 32) {
        out.add(new Violation(at + ".target.higherBits", "must be 8 (int8) or 32 (float), not " + t.higherBits()));
      } else if (t.higherBits() <= bits) {
        out.add(new Violation(at + ".target.higherBits", "must be above weights.bits (" + bits + ") to keep tensors "
            + "at a higher precision"));
      }
    }
  }

  private static void validateSelection(StepSpec step, String at, List<TensorInfo> tensors, List<Violation> out) {
    String candidates = "floating-point tensor of the model";
    boolean patternsValid =
        checkPatterns(step.include(), at + ".include", tensors, TensorSelector::isCandidate, candidates, out).compiled()
        & checkPatterns(step.exclude(), at + ".exclude", tensors, TensorSelector::isCandidate, candidates, out)
            .compiled();
    if (!patternsValid) {
      return;
    }
    List<TensorInfo> selected = TensorSelector.prunes(step)
        ? TensorSelector.selectForPrune(tensors, step.include(), step.exclude())
        : TensorSelector.select(tensors, step.include(), step.exclude());
    String selectionField = step.include().isEmpty() ? at : at + ".include";
    if (selected.isEmpty()) {
      out.add(new Violation(at, step.include().isEmpty()
          ? "selects no tensor: the model has no floating-point weight of rank >= 2 feeding MatMul, Gemm, "
              + "Conv, ConvTranspose or Gather" + (step.exclude().isEmpty() ? "" : " that is not excluded")
              + (step instanceof PruneSpec ? " and not protected" + PruningSteps.PROTECTED_HINT : "")
          : ALL_EXCLUDED));
      return;
    }
    for (TensorInfo t : selected) {
      String why = TensorSelector.unsupportedType(step, t);
      if (why != null) {
        out.add(new Violation(selectionField, why));
      }
      if (step instanceof PruneSpec p && p.method().equals(PruneSpec.NM)) {
        checkNmGroups(p, t, selectionField, out);
      }
      QuantizeSpec q = step instanceof QuantizeSpec plain ? plain
          : step instanceof CalibratedQuantizeSpec c ? c.weights() : null;
      if (q != null && q.isInteger() && q.granularity() != QuantizeSpec.Granularity.TENSOR
          && t.shape().isEmpty()) {
        out.add(new Violation(at + ".granularity", "tensor '" + t.name() + "' is a scalar and has no "
            + (q.granularity() == QuantizeSpec.Granularity.GROUP ? "group" : "channel")
            + " axis; use granularity tensor or exclude it"));
      }
    }
  }

  /**
   * What {@link #checkPatterns} found.
   *
   * @param compiled every pattern is non-null and compiles
   * @param matched every pattern that compiled matches at least one candidate tensor
   */
  record PatternCheck(boolean compiled, boolean matched) {}

  /** The message for a step whose excludes remove everything its includes selected. */
  static final String ALL_EXCLUDED = "selects no tensor: every included tensor is excluded";

  /**
   * Reports include or exclude patterns that are null, do not compile, or match (the whole name of)
   * no tensor that {@code candidate} accepts; {@code candidates} says what those are in the message,
   * e.g. "floating-point tensor of the model". The ONNX and safetensors rules share it.
   */
  static PatternCheck checkPatterns(List<String> patterns, String field, List<TensorInfo> tensors,
      Predicate<TensorInfo> candidate, String candidates, List<Violation> out) {
    boolean compiled = true;
    boolean matched = true;
    for (int j = 0; j < patterns.size(); j++) {
      String f = field + "[" + j + "]";
      String regex = patterns.get(j);
      if (regex == null) {
        out.add(new Violation(f, "must not be null"));
        compiled = false;
        continue;
      }
      Pattern p;
      try {
        p = Pattern.compile(regex);
      } catch (PatternSyntaxException e) {
        out.add(new Violation(f, "'" + regex + "' is not a valid regular expression: " + e.getDescription()
            + " near index " + e.getIndex()));
        compiled = false;
        continue;
      }
      if (tensors.stream().noneMatch(t -> candidate.test(t) && p.matcher(t.name()).matches())) {
        String example = tensors.stream().filter(candidate).map(TensorInfo::name)
            .findFirst().map(n -> " (e.g. '" + n + "')").orElse("");
        out.add(new Violation(f, "'" + regex + "' matches no " + candidates + "; patterns "
            + "must match the whole tensor name" + example));
        matched = false;
      }
    }
    return new PatternCheck(compiled, matched);
  }
}
