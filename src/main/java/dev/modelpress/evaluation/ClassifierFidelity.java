package dev.modelpress.evaluation;

/**
 * Agreement of a classifier-shaped output ({@code [batch, classes]}, floating point, more than one
 * class): the predicted class is the arg-max of each row.
 *
 * @param classes number of classes
 * @param top1Agreement fraction of samples where both models predict the same class (0..1); a row
 *     with a NaN or infinity predicts nothing and never agrees
 * @param originalAccuracy fraction of samples the original predicts correctly, or {@code null}
 *     without labels
 * @param candidateAccuracy the same for the candidate, or {@code null} without labels
 * @param accuracyDeltaPoints {@code (candidate - original) * 100}: negative means the candidate lost
 *     accuracy; {@code null} without labels
 */
public record ClassifierFidelity(
    int classes,
    double top1Agreement,
    Double originalAccuracy,
    Double candidateAccuracy,
    Double accuracyDeltaPoints) {}
