package dev.modelpress.compression;

import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.TensorInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Checks a job's steps against the model's catalogue before the job is queued, so impossible
 * values and patterns that select nothing fail at submit time with the field at fault. The
 * pipeline repeats the selection at run time and would fail the same way, later.
 */
public final class SpecValidator {

  private SpecValidator() {}

  /** Every problem found; empty when the steps can run on the model. */
  public static List<Violation> validate(List<StepSpec> steps, ModelSummary model) {
    List<Violation> violations = new ArrayList<>();
    if (steps == null || steps.isEmpty()) {
      violations.add(new Violation("steps", "at least one step is required"));
      return violations;
    }
    boolean quantized = false;
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
      switch (step) {
        case PruneSpec p -> validatePrune(p, at, violations);
        case QuantizeSpec q -> validateQuantize(q, at, model.opsets().getOrDefault("", 0L), violations);
      }
      quantized |= step instanceof QuantizeSpec;
      validateSelection(step, at, model.tensors(), violations);
    }
    return violations;
  }

  private static void validatePrune(PruneSpec p, String at, List<Violation> out) {
    if (!p.method().equals("magnitude")) {
      out.add(new Violation(at + ".method", "unknown pruning method '" + p.method() + "'; supported: magnitude"));
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

  // ---- weight-only quantization schemes (bits, grid, granularity, group, dtype, format) ----

  private static void validateQuantize(QuantizeSpec q, String at, long opset, List<Violation> out) {
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

  private static void validateSelection(StepSpec step, String at, List<TensorInfo> tensors, List<Violation> out) {
    boolean patternsValid = checkPatterns(step.include(), at + ".include", tensors, out)
        & checkPatterns(step.exclude(), at + ".exclude", tensors, out);
    if (!patternsValid) {
      return;
    }
    List<TensorInfo> selected = TensorSelector.select(tensors, step.include(), step.exclude());
    String selectionField = step.include().isEmpty() ? at : at + ".include";
    if (selected.isEmpty()) {
      out.add(new Violation(at, step.include().isEmpty()
          ? "selects no tensor: the model has no floating-point weight of rank >= 2 feeding MatMul, Gemm, "
              + "Conv, ConvTranspose or Gather" + (step.exclude().isEmpty() ? "" : " that is not excluded")
          : "selects no tensor: every included tensor is excluded"));
      return;
    }
    for (TensorInfo t : selected) {
      String why = TensorSelector.unsupportedType(step, t);
      if (why != null) {
        out.add(new Violation(selectionField, why));
      }
      if (step instanceof QuantizeSpec q && q.isInteger() && q.granularity() != QuantizeSpec.Granularity.TENSOR
          && t.shape().isEmpty()) {
        out.add(new Violation(at + ".granularity", "tensor '" + t.name() + "' is a scalar and has no "
            + (q.granularity() == QuantizeSpec.Granularity.GROUP ? "group" : "channel")
            + " axis; use granularity tensor or exclude it"));
      }
    }
  }

  /** Reports invalid patterns and patterns matching no candidate; true when all compile. */
  private static boolean checkPatterns(List<String> patterns, String field, List<TensorInfo> tensors, List<Violation> out) {
    boolean allValid = true;
    for (int j = 0; j < patterns.size(); j++) {
      String f = field + "[" + j + "]";
      String regex = patterns.get(j);
      if (regex == null) {
        out.add(new Violation(f, "must not be null"));
        allValid = false;
        continue;
      }
      Pattern p;
      try {
        p = Pattern.compile(regex);
      } catch (PatternSyntaxException e) {
        out.add(new Violation(f, "'" + regex + "' is not a valid regular expression: " + e.getDescription()
            + " near index " + e.getIndex()));
        allValid = false;
        continue;
      }
      boolean matches = tensors.stream()
          .anyMatch(t -> TensorSelector.isCandidate(t) && p.matcher(t.name()).matches());
      if (!matches) {
        String example = tensors.stream().filter(TensorSelector::isCandidate).map(TensorInfo::name)
            .findFirst().map(n -> " (e.g. '" + n + "')").orElse("");
        out.add(new Violation(f, "'" + regex + "' matches no floating-point tensor of the model; patterns "
            + "must match the whole tensor name" + example));
      }
    }
    return allValid;
  }
}
