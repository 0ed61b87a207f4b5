package dev.modelpress.compression;

import dev.modelpress.format.npy.NdArray;
import java.nio.file.Path;
import java.util.List;

/**
 * What data-aware steps need beyond the model: calibration samples, a scratch directory for the
 * model copies ONNX Runtime runs, and limits.
 *
 * @param calibration arrays named after the model inputs (samples along the first dimension), or
 *     {@code null} when the job has no calibration dataset
 * @param workDir scratch space for temporary model files (the job's work directory)
 * @param maxCalibrationSamples samples of the calibration data used at most
 * @param batchSize samples per ONNX Runtime run
 * @param intraOpThreads ONNX Runtime intra-op threads
 * @param training runs the training steps ({@link TrainSpec}); {@link TrainingRunner#NONE} when the
 *     caller offers none
 */
public record PipelineContext(
    List<NdArray> calibration, Path workDir, int maxCalibrationSamples, int batchSize, int intraOpThreads,
    TrainingRunner training) {

  /** Default cap on calibration samples: enough for stable ranges and Hessians on typical models. */
  public static final int DEFAULT_MAX_CALIBRATION_SAMPLES = 128;

  public PipelineContext {
    calibration = calibration == null ? null : List.copyOf(calibration);
    training = training == null ? TrainingRunner.NONE : training;
    if (maxCalibrationSamples < 1 || batchSize < 1 || intraOpThreads < 1) {
      throw new IllegalArgumentException("sample limit, batch size and threads must be positive");
    }
  }

  /** A context without a training runner. */
  public PipelineContext(
      List<NdArray> calibration, Path workDir, int maxCalibrationSamples, int batchSize, int intraOpThreads) {
    this(calibration, workDir, maxCalibrationSamples, batchSize, intraOpThreads, TrainingRunner.NONE);
  }

  /** The same context with a training runner. */
  public PipelineContext withTraining(TrainingRunner runner) {
    return new PipelineContext(calibration, workDir, maxCalibrationSamples, batchSize, intraOpThreads, runner);
  }

  /** No calibration data: steps that need it fail with a message naming {@code calibrationDatasetId}. */
  public static PipelineContext none(Path workDir) {
    return new PipelineContext(null, workDir, DEFAULT_MAX_CALIBRATION_SAMPLES, 8, 1);
  }

  /** Calibration data with default limits. */
  public static PipelineContext calibrated(List<NdArray> calibration, Path workDir) {
    return new PipelineContext(calibration, workDir, DEFAULT_MAX_CALIBRATION_SAMPLES, 8, 1);
  }

  /** The same context with another sample cap. */
  public PipelineContext withMaxCalibrationSamples(int samples) {
    return new PipelineContext(calibration, workDir, samples, batchSize, intraOpThreads, training);
  }

  boolean hasCalibration() {
    return calibration != null && !calibration.isEmpty();
  }
}
