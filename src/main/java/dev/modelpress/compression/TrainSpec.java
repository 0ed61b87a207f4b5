package dev.modelpress.compression;

import java.util.List;
import java.util.UUID;

/**
 * A step that trains: knowledge distillation, fine-tuning with fixed sparsity masks after
 * pruning, L1-regularised pruning and quantization-aware training. Unlike the other steps it needs
 * the job's training dataset and, for distillation, a teacher; the pipeline hands it to the
 * {@link TrainingRunner} of its {@link PipelineContext}.
 *
 * @param kind what the step does
 * @param options the training loop's settings, defaults filled
 * @param teacherModelId {@link Kind#DISTILL}: the teacher when it is not the job's model
 * @param studentModelId {@link Kind#DISTILL}: an uploaded student; {@code null} derives one from
 *     the teacher by {@code width}
 * @param width {@link Kind#DISTILL} without a student model: fraction of each layer's output
 *     channels the derived student keeps, in (0, 1); {@code null} keeps every channel
 * @param keepLayers {@link Kind#DISTILL} without a student model: indices of the teacher's
 *     removable blocks (repeated layers) the derived student keeps; {@code null} keeps every layer
 * @param sparsity {@link Kind#L1_PRUNE}: fraction of the selected weights zeroed after training,
 *     or {@code null} when {@code threshold} is given
 * @param threshold {@link Kind#L1_PRUNE}: zero every trained |w| at or below it
 * @param quantize {@link Kind#QAT}: the weight scheme that is fake-quantized while training and
 *     applied after it
 * @param include whole-name regexes of the trained (L1: penalised and pruned; QAT: quantized) weights
 * @param exclude whole-name regexes removing weights from the selection
 */
public record TrainSpec(
    Kind kind,
    Options options,
    UUID teacherModelId,
    UUID studentModelId,
    Double width,
    List<Integer> keepLayers,
    Double sparsity,
    Double threshold,
    QuantizeSpec quantize,
    List<String> include,
    List<String> exclude)
    implements StepSpec {

  public TrainSpec {
    include = include == null ? List.of() : List.copyOf(include);
    exclude = exclude == null ? List.of() : List.copyOf(exclude);
    keepLayers = keepLayers == null ? null : List.copyOf(keepLayers);
  }

  /** A spec without a depth derivation ({@code keepLayers} absent). */
  public TrainSpec(Kind kind, Options options, UUID teacherModelId, UUID studentModelId, Double width,
      Double sparsity, Double threshold, QuantizeSpec quantize, List<String> include, List<String> exclude) {
    this(kind, options, teacherModelId, studentModelId, width, null, sparsity, threshold, quantize, include, exclude);
  }

  /** The four training steps. */
  public enum Kind {
    /** {@code distill}: train a student on a teacher's softened outputs. */
    DISTILL("distill"),
    /** {@code finetune}: recover accuracy after pruning; pruned weights stay exactly zero. */
    FINETUNE("finetune"),
    /** {@code prune} with {@code method: l1}: train with λ·Σ|w|, then prune what it drove to zero. */
    L1_PRUNE("prune"),
    /** {@code quantize} with {@code method: qat}: fake-quantized training, then quantization. */
    QAT("quantize");

    private final String type;

    Kind(String type) {
      this.type = type;
    }

    /** The API's step type. */
    public String type() {
      return type;
    }
  }

  /** What the loss compares. */
  public enum Loss {
    /** Classifiers: α·T²·KL(teacher ‖ student at temperature T) + (1 − α)·CE(labels). */
    KD,
    /** Cross-entropy against the dataset's labels only. */
    CE,
    /** Mean squared error to the teacher's tensors. */
    MSE,
    /** 1 − cosine to the teacher's tensors, per sample. */
    COSINE
  }

  /** Learning-rate schedules. */
  public enum Schedule {
    CONSTANT,
    /** Halve every third of the run. */
    STEP,
    /** Cosine decay to zero over the run. */
    COSINE
  }

  /** Where a finetune step's targets come from. */
  public enum Teacher {
    /** Distil from the job's input model (before any step). */
    ORIGINAL,
    /** Train on the dataset's labels (cross-entropy). */
    LABELS
  }

  /**
   * The training loop's settings.
   *
   * @param epochs passes over the training samples
   * @param batchSize samples per update
   * @param learningRate Adam's peak learning rate
   * @param schedule learning-rate schedule over the run
   * @param warmupSteps steps of linear warm-up
   * @param seed drives shuffling and the validation split; same seed, same data, same result
   * @param validationSplit fraction of the samples held out to pick the best epoch and stop early
   * @param patience epochs without a better validation metric before stopping; {@code null} never
   * @param samples training samples used at most; {@code null} all
   * @param loss what the loss compares
   * @param temperature KD softening temperature
   * @param alpha KD weight of the soft targets (1 without labels)
   * @param tensors MSE/cosine: tensor names (present in teacher and student) compared; empty = outputs
   * @param teacher finetune: distil from the original model or train on labels
   * @param l1 λ of the L1 penalty ({@link Kind#L1_PRUNE}); {@code null} otherwise
   */
  public record Options(
      int epochs,
      int batchSize,
      double learningRate,
      Schedule schedule,
      int warmupSteps,
      long seed,
      double validationSplit,
      Integer patience,
      Integer samples,
      Loss loss,
      double temperature,
      double alpha,
      List<String> tensors,
      Teacher teacher,
      Double l1) {

    public Options {
      tensors = tensors == null ? List.of() : List.copyOf(tensors);
    }
  }

  /** Whether {@code step} is an L1 training step, which selects weights by the pruning defaults. */
  public static boolean prunes(StepSpec step) {
    return step instanceof TrainSpec t && t.kind() == Kind.L1_PRUNE;
  }

  @Override
  public String type() {
    return kind.type();
  }
}
