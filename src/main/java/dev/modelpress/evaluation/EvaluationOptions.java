package dev.modelpress.evaluation;

/**
 * How an evaluation runs.
 *
 * @param batchSize samples per model run, sliced along the first dimension of every dataset array
 * @param maxSamples evaluate at most this many samples from the start of the dataset
 * @param warmupRuns untimed runs of the first batch per model before latency is measured
 * @param latencyRuns timed runs of the first batch per model; 0 skips the latency measurement
 */
public record EvaluationOptions(int batchSize, int maxSamples, int warmupRuns, int latencyRuns) {

  public EvaluationOptions {
    if (batchSize < 1) {
      throw new IllegalArgumentException("batchSize must be at least 1, was " + batchSize);
    }
    if (maxSamples < 1) {
      throw new IllegalArgumentException("maxSamples must be at least 1, was " + maxSamples);
    }
    if (warmupRuns < 0 || latencyRuns < 0) {
      throw new IllegalArgumentException("warmupRuns and latencyRuns must not be negative");
    }
  }

  /** Batch size 1, every sample, 5 warm-up runs, 50 timed runs. */
  public static EvaluationOptions defaults() {
    return new EvaluationOptions(1, Integer.MAX_VALUE, 5, 50);
  }

  public EvaluationOptions withBatchSize(int batchSize) {
    return new EvaluationOptions(batchSize, maxSamples, warmupRuns, latencyRuns);
  }

  public EvaluationOptions withMaxSamples(int maxSamples) {
    return new EvaluationOptions(batchSize, maxSamples, warmupRuns, latencyRuns);
  }

  public EvaluationOptions withLatencyRuns(int warmupRuns, int latencyRuns) {
    return new EvaluationOptions(batchSize, maxSamples, warmupRuns, latencyRuns);
  }
}
