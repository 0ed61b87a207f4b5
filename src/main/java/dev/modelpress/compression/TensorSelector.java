package dev.modelpress.compression;

import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.OnnxTensors;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Chooses the tensors a step applies to, from the model's tensor catalogue, so the same choice can
 * be made at submit time (from the stored summary) and at run time (from the graph).
 *
 * <p>Only floating-point tensors are candidates. With no include patterns the default is every
 * candidate of rank >= 2 that feeds a weight input ({@code MatMul} either input, {@code Gemm:0/1},
 * {@code Conv:1}, {@code ConvTranspose:1}, {@code Gather:0}): the matrices and kernels that hold
 * nearly all parameters, and not biases or normalization vectors, which are small and sensitive.
 * Otherwise a candidate is selected when any include pattern matches its whole name. Exclude
 * patterns (whole-name) then remove tensors either way.
 */
public final class TensorSelector {

  /** Node inputs that hold weights, as {@code OpType:inputIndex}. */
  static final Set<String> WEIGHT_INPUTS =
      Set.of("MatMul:0", "MatMul:1", "Gemm:0", "Gemm:1", "Conv:1", "ConvTranspose:1", "Gather:0");

  private TensorSelector() {}

  /**
   * The selected tensors, in catalogue order.
   *
   * @throws java.util.regex.PatternSyntaxException if a pattern is not a valid regex ({@link
   *     SpecValidator} reports that with the field first)
   */
  public static List<TensorInfo> select(List<TensorInfo> tensors, List<String> include, List<String> exclude) {
    List<Pattern> in = include.stream().map(Pattern::compile).toList();
    List<Pattern> out = exclude.stream().map(Pattern::compile).toList();
    List<TensorInfo> selected = new ArrayList<>();
    for (TensorInfo t : tensors) {
      if (!isCandidate(t)) {
        continue;
      }
      boolean chosen = in.isEmpty() ? isDefaultWeight(t) : anyMatches(in, t.name());
      if (chosen && !anyMatches(out, t.name())) {
        selected.add(t);
      }
    }
    return selected;
  }

  /** Floating-point tensors are the only ones a step can select. */
  public static boolean isCandidate(TensorInfo t) {
    return OnnxTensors.isFloatingPoint(t.dtype());
  }

  /** Whether the default selection (no include patterns) takes this tensor. */
  public static boolean isDefaultWeight(TensorInfo t) {
    return isCandidate(t)
        && t.shape().size() >= 2
        && t.consumers().stream().anyMatch(WEIGHT_INPUTS::contains);
  }

  static boolean anyMatches(List<Pattern> patterns, String name) {
    for (Pattern p : patterns) {
      if (p.matcher(name).matches()) {
        return true;
      }
    }
    return false;
  }

  /** Why the step cannot handle this tensor's element type, or {@code null} if it can. */
  static String unsupportedType(StepSpec step, TensorInfo t) {
    boolean supported = switch (step) {
      case PruneSpec p -> t.dtype().equals("FLOAT") || t.dtype().equals("FLOAT16");
      // A cast keeps tensors already in its type as they are.
      case QuantizeSpec q -> t.dtype().equals("FLOAT")
          || q.dtype() == QuantizeSpec.WeightType.FP16 && t.dtype().equals("FLOAT16")
          || q.dtype() == QuantizeSpec.WeightType.BF16 && t.dtype().equals("BFLOAT16");
    };
    if (supported) {
      return null;
    }
    String allowed = step instanceof PruneSpec ? "FLOAT and FLOAT16" : "FLOAT";
    return "tensor '" + t.name() + "' is " + t.dtype() + "; " + step.type() + " supports " + allowed
        + " tensors only so far (exclude it)";
  }
}
