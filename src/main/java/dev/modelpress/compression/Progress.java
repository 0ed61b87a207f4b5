package dev.modelpress.compression;

/**
 * Receives progress between tensors: step {@code step} (0-based) of {@code steps}, item {@code
 * item} done of {@code items}. The call is also the cancellation point: throwing {@link
 * CompressionCancelledException} stops the pipeline.
 */
@FunctionalInterface
public interface Progress {

  /** Ignores progress. */
  Progress NONE = (step, steps, stepType, item, items, message) -> {};

  void update(int step, int steps, String stepType, int item, int items, String message);
}
