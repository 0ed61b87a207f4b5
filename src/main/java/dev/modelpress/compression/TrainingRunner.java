package dev.modelpress.compression;

import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;

/**
 * Runs a {@link TrainSpec} step for the pipeline. Training needs what a pure pipeline does not
 * hold (the training dataset, teacher models, durable checkpoints), so the caller supplies it
 * through {@link PipelineContext#training()}.
 */
@FunctionalInterface
public interface TrainingRunner {

  /** A pipeline without a training runner: a training step fails with a clear message. */
  TrainingRunner NONE = (model, spec, index, progress) -> {
    throw new CompressionException("step " + index + " (" + spec.type() + ") trains, and this pipeline has no "
        + "training runner");
  };

  /** What one training step produced. */
  record Outcome(ModelProto model, StepReport report) {}

  /**
   * Trains and returns the new model with the step's report.
   *
   * @param model the model the step starts from (the previous step's output)
   * @param index the step's position in the job (0-based)
   * @param progress reports (item, items, message) within the step; throws to cancel
   */
  Outcome run(ModelProto model, TrainSpec spec, int index, StepProgress progress);

  /** Progress within one step; the call is also the cancellation point. */
  @FunctionalInterface
  interface StepProgress {
    void at(int item, int items, String message);
  }
}
