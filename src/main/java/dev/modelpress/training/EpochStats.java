package dev.modelpress.training;

/**
 * One finished epoch.
 *
 * @param epoch 1-based
 * @param trainLoss mean loss over the epoch's batches (data terms; the L1 penalty is not included)
 * @param validationLoss mean loss on the validation split, {@code NaN} without one
 * @param validationMetric accuracy on the validation split when the loss is a classifier's and
 *     labels exist, else the validation loss; {@code NaN} without a split
 * @param learningRate the rate of the epoch's last step
 */
public record EpochStats(int epoch, double trainLoss, double validationLoss, double validationMetric,
    double learningRate) {}
