package dev.modelpress.evaluation;

/**
 * Wall-clock time of one model run on one batch, over repeated runs of the same batch.
 * Percentiles use the nearest-rank method.
 *
 * @param runs number of timed runs
 * @param batchSize samples in the timed batch
 * @param p50Millis median run time in milliseconds
 * @param p95Millis 95th percentile in milliseconds
 * @param meanMillis mean in milliseconds
 */
public record Latency(int runs, int batchSize, double p50Millis, double p95Millis, double meanMillis) {}
