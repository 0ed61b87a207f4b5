package dev.modelpress.evaluation;

import java.util.List;

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
 * @param perClass accuracy of both models on the samples of each true class (with labels and at
 *     most {@value OutputComparison#MAX_PER_CLASS} classes, otherwise {@code null}); labels
 *     outside {@code [0, classes)} are left out
 * @param originalConfusion the original's confusion matrix, rows = true class, columns =
 *     predicted class (with labels and at most {@value OutputComparison#MAX_CONFUSION_CLASSES}
 *     classes, otherwise {@code null}); a row with a NaN or infinity predicts nothing and is in no
 *     column
 * @param candidateConfusion the candidate's, in the same layout
 */
public record ClassifierFidelity(
    int classes,
    double top1Agreement,
    Double originalAccuracy,
    Double candidateAccuracy,
    Double accuracyDeltaPoints,
    List<ClassAccuracy> perClass,
    List<List<Long>> originalConfusion,
    List<List<Long>> candidateConfusion) {

  /** Classifier figures without per-class detail. */
  public ClassifierFidelity(int classes, double top1Agreement, Double originalAccuracy, Double candidateAccuracy,
      Double accuracyDeltaPoints) {
    this(classes, top1Agreement, originalAccuracy, candidateAccuracy, accuracyDeltaPoints, null, null, null);
  }

  /**
   * Accuracy on the samples whose true label is one class (the class's recall).
   *
   * @param label the class index
   * @param support labelled samples of this class
   * @param originalAccuracy fraction of them the original classifies correctly, {@code null} when
   *     the class has no samples
   * @param candidateAccuracy fraction the candidate classifies correctly, or {@code null}
   * @param deltaPoints {@code (candidate - original) * 100}, or {@code null}
   */
  public record ClassAccuracy(int label, long support, Double originalAccuracy, Double candidateAccuracy,
      Double deltaPoints) {}
}
