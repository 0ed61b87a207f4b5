package dev.modelpress.compression;

import java.util.List;
import java.util.Map;

/**
 * What one step did.
 *
 * @param index the step's position in the job (0-based)
 * @param type {@code prune}, {@code quantize} or {@code share}
 * @param summary one human sentence with the totals
 * @param tensors one report per tensor the step changed
 * @param details method-specific figures (structured layers removed, N:M groups, codebooks); empty
 *     when the step has none
 * @param calibration what a data-aware step measured and decided; {@code null} for other steps
 */
public record StepReport(int index, String type, String summary, List<TensorReport> tensors,
    Map<String, Object> details, CalibrationReport calibration) {

  public StepReport {
    tensors = List.copyOf(tensors);
    details = details == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(details));
  }

  /** A report without details or calibration. */
  public StepReport(int index, String type, String summary, List<TensorReport> tensors) {
    this(index, type, summary, tensors, Map.of(), null);
  }

  /** A report with method-specific details. */
  public StepReport(int index, String type, String summary, List<TensorReport> tensors, Map<String, Object> details) {
    this(index, type, summary, tensors, details, null);
  }

  /** A report of a data-aware step. */
  public StepReport(int index, String type, String summary, List<TensorReport> tensors,
      CalibrationReport calibration) {
    this(index, type, summary, tensors, Map.of(), calibration);
  }
}
