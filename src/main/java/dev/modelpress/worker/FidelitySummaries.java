package dev.modelpress.worker;

import dev.modelpress.api.dto.ReportSummary;
import dev.modelpress.evaluation.ClassifierFidelity;
import dev.modelpress.evaluation.FidelityReport;
import dev.modelpress.evaluation.OutputFidelity;

/**
 * Condenses a fidelity report into the job summary: the worst mean cosine and largest error over
 * all outputs (a model is only as close as its furthest output), and classifier figures from the
 * first classifier-shaped output.
 */
final class FidelitySummaries {

  private FidelitySummaries() {}

  static void apply(FidelityReport fidelity, ReportSummary summary) {
    Double cosine = null;
    Double maxError = null;
    for (OutputFidelity o : fidelity.outputs()) {
      if (o.candidateNonFinite() > 0) {
        // NaN/Inf in the result is the worst possible fidelity: say so rather than averaging it away.
        cosine = Double.NaN;
      } else if (o.meanCosine() != null && (cosine == null || o.meanCosine() < cosine)) {
        cosine = o.meanCosine();
      }
      if (o.maxAbsError() != null && (maxError == null || o.maxAbsError() > maxError)) {
        maxError = o.maxAbsError();
      }
      ClassifierFidelity c = o.classifier();
      if (c != null && summary.getTop1Agreement() == null) {
        summary.top1Agreement(c.top1Agreement())
            .accuracyBefore(c.originalAccuracy())
            .accuracyAfter(c.candidateAccuracy());
      }
    }
    summary.meanCosine(cosine == null || cosine.isNaN() ? null : cosine).maxAbsError(maxError);
  }
}
