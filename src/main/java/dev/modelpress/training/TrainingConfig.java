package dev.modelpress.training;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Everything a training run is a function of (with the graph's starting weights and the data).
 * Build one with {@link #builder(List)}.
 *
 * @param losses the loss terms, summed
 * @param epochs maximum epochs
 * @param batchSize samples per optimizer step (the last batch of an epoch may be smaller)
 * @param seed drives the validation split and each epoch's shuffle (from seed and epoch number)
 * @param learningRate the schedule
 * @param beta1 Adam's first-moment decay
 * @param beta2 Adam's second-moment decay
 * @param epsilon Adam's denominator floor
 * @param validationFraction samples held out for validation, in [0, 1); 0 = no validation
 * @param patience epochs without improvement of the validation metric before stopping; 0 = never
 *     stop early
 * @param restoreBest whether the result holds the weights of the best validation epoch
 * @param trainable the variables to train; {@code null} = all of the graph's trainable ones
 * @param freezeZeros whether weights that are exactly zero at the start stay exactly zero
 * @param masks explicit sparsity masks ({@code false} = held at its starting value, normally zero)
 * @param l1 L1 regularisation and pruning, or {@code null}
 * @param quantization quantization-aware training, or {@code null}
 * @param evalBatchSize samples per forward pass when validating
 */
public record TrainingConfig(
    List<LossTerm> losses, int epochs, int batchSize, long seed, LearningRate learningRate, double beta1,
    double beta2, double epsilon, double validationFraction, int patience, boolean restoreBest,
    Set<String> trainable, boolean freezeZeros, Map<String, boolean[]> masks, L1Regularization l1,
    QuantizationAware quantization, int evalBatchSize) {

  public TrainingConfig {
    losses = List.copyOf(losses);
    trainable = trainable == null ? null : Set.copyOf(trainable);
    masks = masks == null ? Map.of() : Map.copyOf(masks);
    if (losses.isEmpty()) {
      throw new IllegalArgumentException("training needs at least one loss term");
    }
    if (epochs < 1 || batchSize < 1 || evalBatchSize < 1) {
      throw new IllegalArgumentException("epochs, batch size and eval batch size must be positive");
    }
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(epsilon > 0)) {
      throw new IllegalArgumentException("Adam needs 0 <= beta1, beta2 < 1 and epsilon > 0");
    }
    if (!(validationFraction >= 0 && validationFraction < 1)) {
      throw new IllegalArgumentException("validation fraction must be in [0, 1), is " + validationFraction);
    }
    if (patience < 0) {
      throw new IllegalArgumentException("patience must not be negative");
    }
  }

  /** Defaults: 1 epoch, batch 64, seed 0, Adam(1e-3, 0.9, 0.999, 1e-8) at a constant rate, no validation. */
  public static Builder builder(List<LossTerm> losses) {
    return new Builder(losses);
  }

  /** Builds a {@link TrainingConfig}. */
  public static final class Builder {
    private final List<LossTerm> losses;
    private int epochs = 1;
    private int batchSize = 64;
    private long seed;
    private LearningRate learningRate = LearningRate.constant(1e-3);
    private double beta1 = 0.9;
    private double beta2 = 0.999;
    private double epsilon = 1e-8;
    private double validationFraction;
    private int patience;
    private boolean restoreBest = true;
    private Set<String> trainable;
    private boolean freezeZeros;
    private Map<String, boolean[]> masks = Map.of();
    private L1Regularization l1;
    private QuantizationAware quantization;
    private int evalBatchSize = 500;

    private Builder(List<LossTerm> losses) {
      this.losses = losses;
    }

    public Builder epochs(int epochs) {
      this.epochs = epochs;
      return this;
    }

    public Builder batchSize(int batchSize) {
      this.batchSize = batchSize;
      return this;
    }

    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    public Builder learningRate(LearningRate learningRate) {
      this.learningRate = learningRate;
      return this;
    }

    public Builder adam(double beta1, double beta2, double epsilon) {
      this.beta1 = beta1;
      this.beta2 = beta2;
      this.epsilon = epsilon;
      return this;
    }

    /** Hold out {@code fraction} of the samples; stop after {@code patience} epochs without improvement (0 = never). */
    public Builder validation(double fraction, int patience) {
      this.validationFraction = fraction;
      this.patience = patience;
      return this;
    }

    public Builder restoreBest(boolean restoreBest) {
      this.restoreBest = restoreBest;
      return this;
    }

    public Builder trainable(Set<String> trainable) {
      this.trainable = trainable;
      return this;
    }

    public Builder freezeZeros(boolean freezeZeros) {
      this.freezeZeros = freezeZeros;
      return this;
    }

    public Builder masks(Map<String, boolean[]> masks) {
      this.masks = masks;
      return this;
    }

    public Builder l1(L1Regularization l1) {
      this.l1 = l1;
      return this;
    }

    public Builder quantization(QuantizationAware quantization) {
      this.quantization = quantization;
      return this;
    }

    public Builder evalBatchSize(int evalBatchSize) {
      this.evalBatchSize = evalBatchSize;
      return this;
    }

    public TrainingConfig build() {
      return new TrainingConfig(losses, epochs, batchSize, seed, learningRate, beta1, beta2, epsilon,
          validationFraction, patience, restoreBest, trainable, freezeZeros, masks, l1, quantization, evalBatchSize);
    }
  }
}
