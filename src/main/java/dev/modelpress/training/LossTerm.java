package dev.modelpress.training;

/**
 * One term of the training loss; the trainer adds the weighted sum of its terms to the graph. Every
 * term is a mean over the batch. {@code output} names an ONNX tensor of the {@link TrainableGraph}
 * (a graph output or an intermediate tensor); {@code target} names a per-sample array of {@link
 * TrainingData#targets()}.
 */
public sealed interface LossTerm {

  /** The ONNX tensor of the student the term reads. */
  String output();

  /** Whether the term scores classes (its metric is accuracy when labels exist). */
  default boolean classifier() {
    return false;
  }

  /**
   * Knowledge distillation (Hinton et al. 2015) on logits: {@code α·T²·KL(softmax(z_t/T) ‖
   * softmax(z_s/T)) + (1−α)·CE(y, z_s)}. The T² keeps the soft term's gradient scale independent of
   * T. Without labels the hard term is dropped (α = 1).
   *
   * @param target the teacher's logits
   * @param alpha weight of the soft term in [0, 1]
   * @param temperature T > 0
   */
  record Distillation(String output, String target, double alpha, double temperature) implements LossTerm {
    public Distillation {
      if (!(alpha >= 0 && alpha <= 1)) {
        throw new IllegalArgumentException("distillation alpha must be in [0, 1], is " + alpha);
      }
      if (!(temperature > 0)) {
        throw new IllegalArgumentException("distillation temperature must be positive, is " + temperature);
      }
    }

    @Override
    public boolean classifier() {
      return true;
    }
  }

  /**
   * Softmax cross-entropy of the logits {@code output} against the hard labels.
   *
   * @param classes number of classes (the logits' last dimension)
   */
  record CrossEntropy(String output, int classes) implements LossTerm {
    public CrossEntropy {
      if (classes < 2) {
        throw new IllegalArgumentException("cross-entropy needs at least 2 classes, not " + classes);
      }
    }

    @Override
    public boolean classifier() {
      return true;
    }
  }

  /** {@code weight · mean((output − target)²)} over every element. */
  record Mse(String output, String target, double weight) implements LossTerm {}

  /** {@code weight · (1 − mean over samples of cos(output_i, target_i))}, each sample flattened. */
  record Cosine(String output, String target, double weight) implements LossTerm {}
}
