package dev.modelpress.compression;

import java.util.List;

/**
 * What one step did.
 *
 * @param index the step's position in the job (0-based)
 * @param type {@code prune} or {@code quantize}
 * @param summary one human sentence with the totals
 * @param tensors one report per tensor the step changed
 */
public record StepReport(int index, String type, String summary, List<TensorReport> tensors) {

  public StepReport {
    tensors = List.copyOf(tensors);
  }
}
