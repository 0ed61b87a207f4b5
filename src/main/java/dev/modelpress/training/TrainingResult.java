package dev.modelpress.training;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What a training run produced and measured.
 *
 * @param weights the trained tensors by ONNX initializer name, in the ONNX layout (under
 *     quantization-aware training: the fp32 shadow weights, to be quantized by the quantize step)
 * @param history one entry per epoch run, including epochs before a resume
 * @param epochsRun the last epoch trained
 * @param stoppedEarly whether the validation metric stopped improving for {@code patience} epochs
 * @param bestEpoch the epoch whose weights {@code weights} are when the best were restored; 0 without validation
 * @param bestMetric that epoch's validation metric, {@code NaN} without validation
 * @param metric {@code accuracy} or {@code loss}: what the validation metric is
 * @param steps optimizer steps taken
 * @param sparsity fraction of exact zeros per trained tensor of rank ≥ 2
 * @param overallSparsity fraction of exact zeros over all those tensors together
 * @param checkpoint the state after the last epoch
 */
public record TrainingResult(Map<String, INDArray> weights, List<EpochStats> history, int epochsRun,
    boolean stoppedEarly, int bestEpoch, double bestMetric, String metric, long steps, Map<String, Double> sparsity,
    double overallSparsity, Checkpoint checkpoint) {

  public TrainingResult {
    weights = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(weights));
    history = List.copyOf(history);
    sparsity = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(sparsity));
  }

  /** The trained values of each tensor, flattened in C order. */
  public Map<String, float[]> weightValues() {
    Map<String, float[]> out = new LinkedHashMap<>();
    weights.forEach((k, v) -> out.put(k, v.dup('c').data().asFloat()));
    return out;
  }
}
