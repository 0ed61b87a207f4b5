package dev.modelpress.compression;

import java.util.List;
import java.util.Map;

/**
 * What one step did.
 *
 * @param index the step's position in the job (0-based)
 * @param type {@code prune} or {@code quantize}
 * @param summary one human sentence with the totals
 * @param tensors one report per tensor the step changed
 * @param details method-specific figures (structured layers removed, N:M groups, codebooks); empty
 *     when the step has none
 */
public record StepReport(
    int index, String type, String summary, List<TensorReport> tensors, Map<String, Object> details) {

  public StepReport {
    tensors = List.copyOf(tensors);
    details = details == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(details));
  }

  /** A report without details. */
  public StepReport(int index, String type, String summary, List<TensorReport> tensors) {
    this(index, type, summary, tensors, Map.of());
  }
}
