package dev.modelpress.training;

/**
 * Receives the trainer's progress; both calls are cancellation points: throwing {@link
 * dev.modelpress.compression.CompressionCancelledException} stops training before the next batch.
 */
public interface TrainingListener {

  /** Ignores progress. */
  TrainingListener NONE = new TrainingListener() {};

  /**
   * After each optimizer step.
   *
   * @param epoch 1-based
   * @param step 1-based within the epoch
   * @param steps steps in the epoch
   * @param loss the batch's loss
   */
  default void onStep(int epoch, int step, int steps, double loss) {}

  /**
   * After each epoch, with everything needed to resume after it.
   *
   * @param checkpoint the state after this epoch; store {@link Checkpoint#toBytes()} to survive the process
   */
  default void onEpoch(EpochStats stats, Checkpoint checkpoint) {}
}
