package dev.modelpress.evaluation;

import java.util.List;

/**
 * What an evaluation measured: per-output fidelity of the candidate to the original, and the
 * latency of both on the same batch with the same thread settings.
 *
 * @param samples samples evaluated
 * @param batchSize samples per run
 * @param intraOpThreads ONNX Runtime intra-op threads used for both models
 * @param outputs one entry per model output, in the original's output order
 * @param original latency of the original, or {@code null} when latency was not measured
 * @param candidate latency of the candidate, or {@code null}
 * @param speedup original p50 / candidate p50 (above 1 means the candidate is faster), or {@code null}
 * @param slower whether the candidate is slower beyond the measured noise: see {@link LatencyComparison}
 * @param latencyComparison the paired comparison behind {@code slower}, or {@code null} when latency
 *     was not measured
 */
public record FidelityReport(
    int samples,
    int batchSize,
    int intraOpThreads,
    List<OutputFidelity> outputs,
    Latency original,
    Latency candidate,
    Double speedup,
    boolean slower,
    LatencyComparison latencyComparison) {

  public FidelityReport {
    outputs = List.copyOf(outputs);
  }

  /** A report without a paired latency comparison. */
  public FidelityReport(int samples, int batchSize, int intraOpThreads, List<OutputFidelity> outputs,
      Latency original, Latency candidate, Double speedup, boolean slower) {
    this(samples, batchSize, intraOpThreads, outputs, original, candidate, speedup, slower, null);
  }

  /** The fidelity of the named output, or {@code null} when the models have no such output. */
  public OutputFidelity output(String name) {
    return outputs.stream().filter(o -> o.name().equals(name)).findFirst().orElse(null);
  }
}
