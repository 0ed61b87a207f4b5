package dev.modelpress.compression;

import java.util.List;

/**
 * A pruning step. {@code method} chooses the algorithm:
 *
 * <ul>
 *   <li>{@code magnitude} (unstructured): exactly one of {@code sparsity} (fraction of zeros to
 *       reach, in [0, 1)) and {@code threshold} (zero every weight with |w| <= threshold). With a
 *       sparsity, {@link Scope#LAYER} gives each tensor that sparsity and {@link Scope#GLOBAL}
 *       finds one threshold over all selected tensors together.
 *   <li>{@code nm} (semi-structured N:M): in every group of {@code m} consecutive weights along the
 *       input (reduction) dimension keep the {@code n} of largest magnitude.
 *   <li>{@code structured}: remove the fraction {@code sparsity} of whole output channels (Conv
 *       filters, Gemm/MatMul neurons, as {@code target} says) of lowest {@code criterion} norm, and
 *       rewrite the graph so they are gone.
 *   <li>{@code wanda} and {@code sparsegpt} (need calibration data): {@code sparsity} of every
 *       selected MatMul/Gemm weight, chosen from activation statistics ({@link ActivationPruning}).
 * </ul>
 *
 * A {@code null} method means {@code magnitude}, a {@code null} scope {@code LAYER}, {@code null}
 * lists empty; {@code criterion} and {@code target} default to {@code L1} and {@code CHANNELS}.
 */
public record PruneSpec(
    String method,
    Double sparsity,
    Double threshold,
    Scope scope,
    List<String> include,
    List<String> exclude,
    Integer n,
    Integer m,
    Criterion criterion,
    Target target)
    implements StepSpec {

  /** Unstructured magnitude pruning. */
  public static final String MAGNITUDE = "magnitude";

  /** N:M semi-structured pruning. */
  public static final String NM = "nm";

  /** Wanda: |W|·‖X‖ per output, from calibration data. */
  public static final String WANDA = "wanda";

  /** SparseGPT: layer-wise reconstruction with the calibration Hessian. */
  public static final String SPARSEGPT = "sparsegpt";

  /** Redundancy pruning: remove neurons whose activations a kept twin predicts, folding them into the next layer. */
  public static final String CORRELATION = "correlation";

  /** Default minimum |Pearson r| of a neuron removed by correlation pruning with its twin. */
  public static final double DEFAULT_CORRELATION = 0.95;

  /** Structured (channel) pruning with graph rewrite. */
  public static final String STRUCTURED = "structured";

  /** Whether a sparsity target applies to each tensor or to the selection as a whole. */
  public enum Scope {
    LAYER,
    GLOBAL
  }

  /**
   * How structured pruning ranks output channels: by the L1 or L2 norm of their weights, or by
   * their mean |activation| after the activation function on the job's calibration data.
   */
  public enum Criterion {
    L1,
    L2,
    ACTIVATION
  }

  /**
   * Which layers structured pruning shrinks: Conv output channels ({@code FILTERS}), Gemm/MatMul
   * output neurons ({@code NEURONS}), both ({@code CHANNELS}), or attention heads ({@code HEADS}).
   */
  public enum Target {
    CHANNELS,
    FILTERS,
    NEURONS,
    /** Whole attention heads of self-attention blocks ({@link HeadPruner}). */
    HEADS
  }

  public PruneSpec {
    method = method == null ? MAGNITUDE : method;
    scope = scope == null ? Scope.LAYER : scope;
    include = include == null ? List.of() : List.copyOf(include);
    exclude = exclude == null ? List.of() : List.copyOf(exclude);
    criterion = criterion == null ? Criterion.L1 : criterion;
    target = target == null ? Target.CHANNELS : target;
  }

  /** A magnitude-style spec without N:M or structured fields. */
  public PruneSpec(
      String method, Double sparsity, Double threshold, Scope scope, List<String> include, List<String> exclude) {
    this(method, sparsity, threshold, scope, include, exclude, null, null, null, null);
  }

  /** Layer-scope magnitude pruning of the default weights to {@code sparsity}. */
  public static PruneSpec layer(double sparsity) {
    return new PruneSpec(MAGNITUDE, sparsity, null, Scope.LAYER, List.of(), List.of());
  }

  /** Global magnitude pruning of the default weights to {@code sparsity}. */
  public static PruneSpec global(double sparsity) {
    return new PruneSpec(MAGNITUDE, sparsity, null, Scope.GLOBAL, List.of(), List.of());
  }

  /** Pruning of the default weights with |w| <= {@code threshold}. */
  public static PruneSpec belowThreshold(double threshold) {
    return new PruneSpec(MAGNITUDE, null, threshold, Scope.LAYER, List.of(), List.of());
  }

  /** N:M pruning of the default weights. */
  public static PruneSpec nm(int n, int m) {
    return new PruneSpec(NM, null, null, Scope.LAYER, List.of(), List.of(), n, m, null, null);
  }

  /** Structured pruning of {@code sparsity} of the channels of the default layers. */
  public static PruneSpec structured(double sparsity, Criterion criterion, Target target) {
    return new PruneSpec(STRUCTURED, sparsity, null, Scope.LAYER, List.of(), List.of(), null, null, criterion, target);
  }

  /** The same spec with other include/exclude patterns. */
  public PruneSpec withSelection(List<String> include, List<String> exclude) {
    return new PruneSpec(method, sparsity, threshold, scope, include, exclude, n, m, criterion, target);
  }

  @Override
  public String type() {
    return "prune";
  }
}
