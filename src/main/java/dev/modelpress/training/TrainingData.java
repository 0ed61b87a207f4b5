package dev.modelpress.training;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What the trainer learns from, sample-aligned: the graph's inputs, optional class labels, and
 * optional per-sample targets (a teacher's outputs or intermediate tensors, computed once before
 * training, e.g. by {@link TeacherOutputs#compute}).
 *
 * @param inputs one array per graph input, by input name
 * @param labels class indices, one per sample, or {@code null} when the data is unlabelled
 * @param targets per-sample targets by the name a {@link LossTerm} refers to them with
 */
public record TrainingData(Map<String, SampleArray> inputs, long[] labels, Map<String, SampleArray> targets) {

  public TrainingData {
    inputs = Map.copyOf(new LinkedHashMap<>(inputs));
    targets = targets == null ? Map.of() : Map.copyOf(targets);
    if (inputs.isEmpty()) {
      throw new IllegalArgumentException("training data needs at least one input array");
    }
    int n = -1;
    for (var e : inputs.entrySet()) {
      n = check(n, e.getKey(), e.getValue().samples());
    }
    for (var e : targets.entrySet()) {
      n = check(n, "target " + e.getKey(), e.getValue().samples());
    }
    if (labels != null) {
      check(n, "labels", labels.length);
    }
  }

  /** Inputs and labels, no targets. */
  public static TrainingData labelled(Map<String, SampleArray> inputs, long[] labels) {
    return new TrainingData(inputs, labels, Map.of());
  }

  /** Number of samples. */
  public int samples() {
    return inputs.values().iterator().next().samples();
  }

  /** Whether class labels are present. */
  public boolean hasLabels() {
    return labels != null;
  }

  private static int check(int n, String what, int samples) {
    if (n >= 0 && samples != n) {
      throw new IllegalArgumentException(what + " has " + samples + " samples, the other arrays " + n);
    }
    return samples;
  }
}
