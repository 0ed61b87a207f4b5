package dev.modelpress.training;

import java.util.Set;

/**
 * L1-regularised training followed by pruning: {@code λ·Σ|w|} over the selected tensors is added to
 * the loss (its subgradient {@code λ·sign(w)}, 0 at 0, is added to the gradient before the Adam
 * update), then, after training, weights the penalty drove small are set to exactly zero: those
 * with {@code |w| < pruneBelow}, or the smallest magnitudes over all selected tensors together
 * until {@code targetSparsity} of them are zero. Exactly one of the two must be given.
 *
 * <p>Adam normalises the gradient, so a weight the penalty pushes to zero ends oscillating around
 * it with an amplitude near the learning rate rather than at exact zero: the pruning pass is what
 * makes the sparsity exact.
 *
 * @param lambda the penalty weight λ ≥ 0
 * @param tensors the tensors penalised and pruned; {@code null} for every trainable tensor of rank ≥ 2
 */
public record L1Regularization(double lambda, Set<String> tensors, Double pruneBelow, Double targetSparsity) {

  public L1Regularization {
    tensors = tensors == null ? null : Set.copyOf(tensors);
    if (!(lambda >= 0) || Double.isInfinite(lambda)) {
      throw new IllegalArgumentException("L1 lambda must be a finite number >= 0, is " + lambda);
    }
    if ((pruneBelow == null) == (targetSparsity == null)) {
      throw new IllegalArgumentException("L1 pruning needs exactly one of pruneBelow and targetSparsity");
    }
    if (pruneBelow != null && !(pruneBelow >= 0)) {
      throw new IllegalArgumentException("pruneBelow must be >= 0, is " + pruneBelow);
    }
    if (targetSparsity != null && !(targetSparsity >= 0 && targetSparsity < 1)) {
      throw new IllegalArgumentException("targetSparsity must be in [0, 1), is " + targetSparsity);
    }
  }

  /** Penalise the default tensors and prune {@code |w| < threshold}. */
  public static L1Regularization pruneBelow(double lambda, double threshold) {
    return new L1Regularization(lambda, null, threshold, null);
  }

  /** Penalise the default tensors and prune the smallest to {@code sparsity}. */
  public static L1Regularization toSparsity(double lambda, double sparsity) {
    return new L1Regularization(lambda, null, null, sparsity);
  }
}
