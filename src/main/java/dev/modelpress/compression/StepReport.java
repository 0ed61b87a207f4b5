package dev.modelpress.compression;

import java.util.List;

/**
 * What one step did.
 *
 * @param index the step's position in the job (0-based)
 * @param type {@code prune} or {@code quantize}
 * @param summary one human sentence with the totals
 * @param tensors one report per tensor the step changed
 * @param calibration what a data-aware step measured and decided; {@code null} for other steps
 */
public record StepReport(int index, String type, String summary, List<TensorReport> tensors,
    CalibrationReport calibration) {

  public StepReport {
    tensors = List.copyOf(tensors);
  }

  /** A report of a step that used no calibration data. */
  public StepReport(int index, String type, String summary, List<TensorReport> tensors) {
    this(index, type, summary, tensors, null);
  }
}
