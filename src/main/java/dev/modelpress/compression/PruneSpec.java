package dev.modelpress.compression;

import java.util.List;

/**
 * Unstructured magnitude pruning: zero the weights of smallest absolute value.
 *
 * <p>Exactly one of {@code sparsity} (fraction of zeros to reach, in [0, 1)) and {@code
 * threshold} (zero every weight with |w| <= threshold) is given. With a sparsity, {@link
 * Scope#LAYER} gives each tensor that sparsity and {@link Scope#GLOBAL} finds one threshold over
 * all selected tensors together. A {@code null} method means {@code magnitude}, a {@code null}
 * scope means {@code LAYER}, {@code null} lists mean empty.
 */
public record PruneSpec(
    String method, Double sparsity, Double threshold, Scope scope, List<String> include, List<String> exclude)
    implements StepSpec {

  /** Whether a sparsity target applies to each tensor or to the selection as a whole. */
  public enum Scope {
    LAYER,
    GLOBAL
  }

  public PruneSpec {
    method = method == null ? "magnitude" : method;
    scope = scope == null ? Scope.LAYER : scope;
    include = include == null ? List.of() : List.copyOf(include);
    exclude = exclude == null ? List.of() : List.copyOf(exclude);
  }

  /** Layer-scope magnitude pruning of the default weights to {@code sparsity}. */
  public static PruneSpec layer(double sparsity) {
    return new PruneSpec("magnitude", sparsity, null, Scope.LAYER, List.of(), List.of());
  }

  /** Global magnitude pruning of the default weights to {@code sparsity}. */
  public static PruneSpec global(double sparsity) {
    return new PruneSpec("magnitude", sparsity, null, Scope.GLOBAL, List.of(), List.of());
  }

  /** Pruning of the default weights with |w| <= {@code threshold}. */
  public static PruneSpec belowThreshold(double threshold) {
    return new PruneSpec("magnitude", null, threshold, Scope.LAYER, List.of(), List.of());
  }

  @Override
  public String type() {
    return "prune";
  }
}
