package dev.modelpress.worker;

import dev.modelpress.compression.CompressionException;
import dev.modelpress.compression.ErrorStats;
import dev.modelpress.compression.OnnxPipeline;
import dev.modelpress.compression.PipelineResult;
import dev.modelpress.compression.Progress;
import dev.modelpress.compression.PruneSpec;
import dev.modelpress.compression.QuantizeSpec;
import dev.modelpress.compression.StepReport;
import dev.modelpress.compression.TensorReport;
import dev.modelpress.compression.TensorSelector;
import dev.modelpress.compression.TrainSpec;
import dev.modelpress.compression.TrainingRunner;
import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.evaluation.InputCompatibility;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.ValueInfo;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.ModelEntity;
import dev.modelpress.model.ModelService;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.training.Checkpoint;
import dev.modelpress.training.EpochStats;
import dev.modelpress.training.L1Regularization;
import dev.modelpress.training.LearningRate;
import dev.modelpress.training.LossTerm;
import dev.modelpress.training.OnnxTranslator;
import dev.modelpress.training.QuantizationAware;
import dev.modelpress.training.RemovableBlocks;
import dev.modelpress.training.SampleArray;
import dev.modelpress.training.TeacherOutputs;
import dev.modelpress.training.TrainableGraph;
import dev.modelpress.training.Trainer;
import dev.modelpress.training.TrainingConfig;
import dev.modelpress.training.TrainingData;
import dev.modelpress.training.TrainingListener;
import dev.modelpress.training.TrainingResult;
import dev.modelpress.compression.quantize.QuantLayout;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs a job's training steps ({@link TrainSpec}) for the pipeline: picks teacher and student,
 * computes the teacher's outputs once in ONNX Runtime, translates the student to SameDiff, trains,
 * writes the weights back into the student's ONNX graph, and stores a checkpoint after every epoch
 * under {@code jobs/<id>/checkpoints/step-<i>.ckpt} so a later attempt of the same job (its worker
 * died) resumes after the last finished epoch instead of starting over.
 *
 * <p>A checkpoint is only resumed from when it was written for the same step, student model and
 * settings: it starts with a SHA-256 fingerprint of those, and any other checkpoint is ignored.
 */
final class TrainingStage implements TrainingRunner {

  private static final Logger log = LoggerFactory.getLogger(TrainingStage.class);
  private static final byte[] MAGIC = "MPJOBCK1".getBytes(StandardCharsets.US_ASCII);

  /** Where the inputs of a training step come from; the runner supplies them lazily. */
  interface Inputs {
    /** The job's training dataset, arrays named after the model inputs (plus optional labels). */
    List<NdArray> trainingData() throws IOException, FormatException;

    /** The job's input model as it was uploaded (the teacher of finetune and of derived students). */
    Path originalFile();

    /** A local copy of another model of the job's owner (teacher or student of a distillation). */
    Path modelFile(UUID id) throws IOException;
  }

  private final ArtifactStore store;
  private final UUID jobId;
  private final Inputs inputs;
  private final Path work;
  private final int threads;

  TrainingStage(ArtifactStore store, UUID jobId, Inputs inputs, Path work, int threads) {
    this.store = store;
    this.jobId = jobId;
    this.inputs = inputs;
    this.work = work;
    this.threads = threads;
  }

  /** The prefix of a job's checkpoints, deleted when the job ends. */
  static String checkpointPrefix(UUID jobId) {
    return "jobs/" + jobId + "/checkpoints/";
  }

  @Override
  public Outcome run(ModelProto model, TrainSpec spec, int index, StepProgress progress) {
    try {
      return train(model, spec, index, progress);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (FormatException | EvaluationException e) {
      throw new CompressionException("step " + index + " (" + spec.type() + "): " + e.getMessage());
    }
  }

  private Outcome train(ModelProto current, TrainSpec spec, int index, StepProgress progress)
      throws IOException, FormatException, EvaluationException {
    long started = System.nanoTime();
    TrainSpec.Options o = spec.options();
    String at = "step " + index + " (" + spec.type() + ")";

    // ---- teacher and student ----
    ModelProto student;
    Path teacherFile;
    ModelProto teacher = null; // read once, when a loss needs the teacher's tensors
    String studentSource;
    String teacherSource;
    switch (spec.kind()) {
      case DISTILL -> {
        teacherFile = spec.teacherModelId() != null ? inputs.modelFile(spec.teacherModelId())
            : write(current, "teacher-" + index + ".onnx");
        teacherSource = spec.teacherModelId() != null ? "model " + spec.teacherModelId() : "the job's model";
        teacher = spec.teacherModelId() != null ? OnnxModels.read(teacherFile) : current;
        if (spec.studentModelId() != null) {
          student = OnnxModels.read(inputs.modelFile(spec.studentModelId()));
          studentSource = "model " + spec.studentModelId();
        } else {
          progress.at(0, 1, "deriving the student from the teacher");
          Derived derived = derive(teacher, spec);
          student = derived.model();
          studentSource = derived.description();
        }
      }
      default -> {
        student = current;
        studentSource = "the model entering this step";
        boolean labels = o.teacher() == TrainSpec.Teacher.LABELS;
        teacherFile = labels ? null : inputs.originalFile();
        teacherSource = labels ? "the dataset's labels" : "the job's input model";
      }
    }
    var unsupported = OnnxTranslator.unsupported(student);
    if (!unsupported.isEmpty()) {
      throw new CompressionException(at + ": the student cannot be trained: " + OnnxTranslator.describe(unsupported));
    }

    // ---- data ----
    List<NdArray> arrays = inputs.trainingData();
    int samples = samples(arrays);
    if (o.samples() != null && o.samples() < samples) {
      samples = o.samples();
      arrays = arrays.stream().map(a -> head(a, o.samples())).toList();
    }
    long[] labels = null;
    Map<String, SampleArray> featureArrays = new LinkedHashMap<>();
    List<NdArray> features = new ArrayList<>();
    for (NdArray a : arrays) {
      if (InputCompatibility.LABELS.equals(a.name())) {
        labels = InputCompatibility.labelValues(a);
      } else {
        features.add(a);
        featureArrays.put(a.name(), SampleArray.of(a));
      }
    }
    List<String> studentOutputs = student.getGraph().getOutputList().stream().map(v -> v.getName()).toList();
    List<LossTerm> losses = new ArrayList<>();
    Map<String, SampleArray> targets = Map.of();
    if (o.loss() == TrainSpec.Loss.CE) {
      if (labels == null) {
        throw new CompressionException(at + ": training on labels needs a 'labels' array in the training dataset");
      }
      losses.add(new LossTerm.CrossEntropy(studentOutputs.getFirst(), classes(student, studentOutputs.getFirst())));
    } else {
      ModelProto teacherModel = teacher != null ? teacher : OnnxModels.read(teacherFile);
      List<String> teacherNames;
      List<String> studentNames;
      if (o.tensors().isEmpty()) {
        teacherNames = teacherModel.getGraph().getOutputList().stream().map(v -> v.getName()).toList();
        studentNames = studentOutputs;
        if (o.loss() == TrainSpec.Loss.KD) {
          teacherNames = teacherNames.subList(0, 1);
          studentNames = studentNames.subList(0, 1);
        }
      } else {
        teacherNames = o.tensors();
        studentNames = o.tensors();
      }
      progress.at(0, 1, "running the teacher on " + samples + " samples");
      targets = new LinkedHashMap<>();
      Map<String, SampleArray> computed = TeacherOutputs.compute(teacherFile, features, teacherNames, 64);
      for (int k = 0; k < teacherNames.size(); k++) {
        String target = "teacher:" + teacherNames.get(k);
        targets.put(target, computed.get(teacherNames.get(k)));
        String out = studentNames.get(k);
        losses.add(switch (o.loss()) {
          case KD -> new LossTerm.Distillation(out, target, o.alpha(), o.temperature());
          case MSE -> new LossTerm.Mse(out, target, 1.0);
          case COSINE -> new LossTerm.Cosine(out, target, 1.0);
          case CE -> throw new IllegalStateException();
        });
      }
    }
    TrainingData data = new TrainingData(featureArrays, labels, targets);

    // ---- the graph and the loop's settings ----
    TrainableGraph graph = OnnxTranslator.translate(student);
    Set<String> selected = selected(student, spec);
    TrainingConfig.Builder config = TrainingConfig.builder(losses)
        .epochs(o.epochs())
        .batchSize(o.batchSize())
        .seed(o.seed())
        .learningRate(schedule(o))
        .validation(o.validationSplit(), o.patience() == null ? 0 : o.patience())
        .restoreBest(o.validationSplit() > 0)
        .freezeZeros(spec.kind() != TrainSpec.Kind.DISTILL);
    if (spec.kind() == TrainSpec.Kind.L1_PRUNE) {
      L1Regularization l1 = spec.sparsity() != null ? L1Regularization.toSparsity(o.l1(), spec.sparsity())
          : L1Regularization.pruneBelow(o.l1(), spec.threshold());
      config.l1(new L1Regularization(l1.lambda(), selected, l1.pruneBelow(), l1.targetSparsity()));
    }
    if (spec.kind() == TrainSpec.Kind.QAT) {
      QuantizeSpec q = spec.quantize();
      QuantLayout.Mode mode = switch (q.granularity()) {
        case TENSOR -> QuantLayout.Mode.TENSOR;
        case CHANNEL -> QuantLayout.Mode.CHANNEL;
        case GROUP -> QuantLayout.Mode.GROUP;
      };
      config.quantization(QuantizationAware.symmetric(student, selected, q.bits(), mode,
          q.groupSize() == null ? 0 : q.groupSize()));
    }
    TrainingConfig cfg = config.build();

    // ---- resume, train, checkpoint ----
    String key = checkpointPrefix(jobId) + "step-" + index + ".ckpt";
    byte[] fingerprint = fingerprint(student, spec, index);
    Checkpoint resumeFrom = loadCheckpoint(key, fingerprint);
    int resumedAfter = resumeFrom == null ? 0 : resumeFrom.epoch();
    if (resumeFrom != null) {
      log.info("Job {} {}: resuming after epoch {} from its checkpoint", jobId, at, resumedAfter);
    }
    TrainingListener listener = new TrainingListener() {
      private String last = "";

      @Override
      public void onStep(int epoch, int step, int steps, double loss) {
        progress.at((epoch - 1) * steps + step, o.epochs() * steps, String.format(Locale.ROOT,
            "epoch %d/%d, step %d/%d, loss %.4f%s", epoch, o.epochs(), step, steps, loss, last));
      }

      @Override
      public void onEpoch(EpochStats stats, Checkpoint checkpoint) {
        last = Double.isNaN(stats.validationMetric()) ? ""
            : String.format(Locale.ROOT, "; epoch %d validation %.4f", stats.epoch(), stats.validationMetric());
        saveCheckpoint(key, fingerprint, checkpoint);
      }
    };
    TrainingResult result = resumeFrom == null ? Trainer.train(graph, data, cfg, listener)
        : Trainer.resume(graph, data, cfg, listener, resumeFrom);

    ModelProto trained = OnnxTranslator.writeBack(student, result.weights());
    List<TensorReport> tensors = tensorReports(student, trained, result.weights().keySet());
    Map<String, Object> details = new LinkedHashMap<>();
    details.put("kind", spec.kind().name().toLowerCase(Locale.ROOT));
    details.put("student", studentSource);
    details.put("studentParameters", OnnxModels.summarize(trained).parameterCount());
    details.put("teacher", teacherSource);
    details.put("samples", data.samples());
    details.put("loss", o.loss().name().toLowerCase(Locale.ROOT));
    details.put("epochs", o.epochs());
    details.put("epochsRun", result.epochsRun());
    details.put("resumedAfterEpoch", resumedAfter);
    details.put("stoppedEarly", result.stoppedEarly());
    details.put("validationMetric", result.metric());
    details.put("bestEpoch", result.bestEpoch());
    details.put("bestValidation", Double.isNaN(result.bestMetric()) ? null : result.bestMetric());
    details.put("optimizerSteps", result.steps());
    details.put("history", result.history());
    details.put("seconds", (System.nanoTime() - started) / 1e9);
    double l1Sparsity = spec.kind() == TrainSpec.Kind.L1_PRUNE ? sparsity(trained, selected) : Double.NaN;
    if (spec.kind() == TrainSpec.Kind.L1_PRUNE) {
      // Over the weights the step selected, as the artifact holds them.
      details.put("sparsity", l1Sparsity);
      details.put("prunedTensors", selected.stream().sorted().toList());
    }
    String summary = String.format(Locale.ROOT, "%s: %d epoch(s) on %d samples%s%s", spec.kind() == TrainSpec.Kind.DISTILL
            ? "distilled " + studentSource + " from " + teacherSource : "trained from " + teacherSource,
        result.epochsRun(), data.samples(), resumedAfter > 0 ? " (resumed after epoch " + resumedAfter + ")" : "",
        Double.isNaN(result.bestMetric()) ? "" : String.format(Locale.ROOT, ", best validation %s %.4f (epoch %d)",
            result.metric(), result.bestMetric(), result.bestEpoch()));
    if (spec.kind() == TrainSpec.Kind.L1_PRUNE) {
      summary += String.format(Locale.ROOT, "; L1 λ=%.2g then pruned to sparsity %.4f", o.l1(), l1Sparsity);
    }
    if (spec.kind() == TrainSpec.Kind.QAT) {
      // The trained fp32 weights are quantized by the ordinary step, on the grid they were trained through.
      QuantizeSpec q = spec.quantize().selecting(new ArrayList<>(selected).stream().map(java.util.regex.Pattern::quote)
          .toList(), List.of());
      PipelineResult quantized = OnnxPipeline.run(trained, List.of(q), Progress.NONE);
      trained = quantized.model();
      tensors = quantized.steps().getFirst().tensors();
      summary += "; then " + quantized.steps().getFirst().summary();
    }
    return new Outcome(trained, new StepReport(index, spec.type(), summary, tensors, details));
  }

  /** Fraction of exact zeros over the named initializers of {@code model}. */
  private static double sparsity(ModelProto model, Set<String> names) {
    long zeros = 0;
    long total = 0;
    for (TensorProto t : model.getGraph().getInitializerList()) {
      if (names.contains(t.getName())) {
        for (float v : dev.modelpress.format.onnx.OnnxTensors.toFloats(t)) {
          zeros += v == 0 ? 1 : 0;
          total++;
        }
      }
    }
    return total == 0 ? 0 : (double) zeros / total;
  }

  private record Derived(ModelProto model, String description) {}

  /**
   * A student derived from the teacher: first fewer layers ({@code keepLayers}: the other removable
   * blocks are removed), then structured pruning keeps {@code width} of each layer's channels.
   */
  private static Derived derive(ModelProto teacher, TrainSpec spec) {
    ModelProto student = teacher;
    List<String> how = new ArrayList<>();
    if (spec.keepLayers() != null) {
      RemovableBlocks.Analysis blocks = RemovableBlocks.find(teacher);
      String problem = RemovableBlocks.checkKeep(blocks, spec.keepLayers());
      if (problem != null) {
        throw new CompressionException("student.keepLayers: " + problem);
      }
      student = RemovableBlocks.keep(teacher, blocks, spec.keepLayers());
      how.add(String.format(Locale.ROOT, "layers %s of its %d", spec.keepLayers().stream().sorted().toList(),
          blocks.blocks().size()));
    }
    if (spec.width() != null) {
      PruneSpec prune = new PruneSpec(PruneSpec.STRUCTURED, 1 - spec.width(), null, PruneSpec.Scope.LAYER,
          spec.include(), spec.exclude(), null, null, PruneSpec.Criterion.L1, PruneSpec.Target.CHANNELS);
      student = OnnxPipeline.run(student, List.of(prune), Progress.NONE).model();
      how.add(percent(spec.width()) + " of each layer's output channels (L1)");
    }
    return new Derived(student, "the teacher with " + String.join(" and ", how));
  }

  /** Names of the weights an L1 or QAT step acts on: the step's include/exclude over the default selection. */
  private static Set<String> selected(ModelProto student, TrainSpec spec) {
    List<TensorInfo> tensors = OnnxModels.summarize(student).tensors();
    // Like every prune step, an l1 step leaves the final classifier alone unless include names it.
    List<TensorInfo> picked = TensorSelector.selectFor(spec, student.getGraph(), tensors);
    Set<String> names = new HashSet<>();
    for (TensorInfo t : picked) {
      if (t.shape().size() >= 2) {
        names.add(t.name());
      }
    }
    return names;
  }

  private static LearningRate schedule(TrainSpec.Options o) {
    LearningRate lr = switch (o.schedule()) {
      case CONSTANT -> LearningRate.constant(o.learningRate());
      case STEP -> LearningRate.stepDecay(o.learningRate(), 0.5, Math.max(1, o.epochs() / 3));
      case COSINE -> LearningRate.cosine(o.learningRate(), 0);
    };
    return o.warmupSteps() > 0 ? lr.withWarmup(o.warmupSteps()) : lr;
  }

  private static int classes(ModelProto model, String output) {
    for (var v : model.getGraph().getOutputList()) {
      if (v.getName().equals(output)) {
        var dims = v.getType().getTensorType().getShape().getDimList();
        if (!dims.isEmpty() && dims.getLast().hasDimValue() && dims.getLast().getDimValue() > 1) {
          return Math.toIntExact(dims.getLast().getDimValue());
        }
      }
    }
    throw new CompressionException("output '" + output + "' has no fixed class dimension; cross-entropy needs one");
  }

  // ---- checkpoints ----

  private Checkpoint loadCheckpoint(String key, byte[] fingerprint) {
    if (store.stat(key).isEmpty()) {
      return null;
    }
    try (InputStream in = store.open(key)) {
      byte[] all = in.readAllBytes();
      int header = MAGIC.length + fingerprint.length;
      if (all.length < header || !Arrays.equals(all, 0, MAGIC.length, MAGIC, 0, MAGIC.length)
          || !Arrays.equals(all, MAGIC.length, header, fingerprint, 0, fingerprint.length)) {
        log.warn("Job {}: checkpoint {} was written for other settings; training starts over", jobId, key);
        return null;
      }
      return Checkpoint.fromBytes(Arrays.copyOfRange(all, header, all.length));
    } catch (IOException | RuntimeException e) {
      log.warn("Job {}: checkpoint {} cannot be read ({}); training starts over", jobId, key, e.getMessage());
      return null;
    }
  }

  private void saveCheckpoint(String key, byte[] fingerprint, Checkpoint checkpoint) {
    byte[] body = checkpoint.toBytes();
    byte[] all = new byte[MAGIC.length + fingerprint.length + body.length];
    System.arraycopy(MAGIC, 0, all, 0, MAGIC.length);
    System.arraycopy(fingerprint, 0, all, MAGIC.length, fingerprint.length);
    System.arraycopy(body, 0, all, MAGIC.length + fingerprint.length, body.length);
    try {
      store.put(key, new ByteArrayInputStream(all));
    } catch (IOException | RuntimeException e) {
      // Training goes on: a missing checkpoint only costs the epochs a later attempt would redo.
      log.warn("Job {}: checkpoint {} could not be stored: {}", jobId, key, e.toString());
    }
  }

  private static byte[] fingerprint(ModelProto student, TrainSpec spec, int index) {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      sha.update(student.toByteArray());
      sha.update((index + "|" + spec).getBytes(StandardCharsets.UTF_8));
      return sha.digest();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  // ---- data helpers ----

  private static int samples(List<NdArray> arrays) {
    return arrays.isEmpty() ? 0 : Math.toIntExact(arrays.getFirst().shape()[0]);
  }

  private static NdArray head(NdArray a, int n) {
    long[] shape = a.shape().clone();
    long row = a.elementCount() / shape[0] * a.dtype().size();
    shape[0] = n;
    ByteBuffer data = a.data().duplicate();
    data.limit(Math.toIntExact(row * n));
    return new NdArray(a.name(), a.dtype(), shape, data.slice());
  }

  private Path write(ModelProto model, String name) throws IOException {
    Path file = work.resolve(name);
    OnnxModels.write(model, file);
    return file;
  }

  private static String percent(Double width) {
    return String.format(Locale.ROOT, "%.0f%%", width * 100);
  }

  /** Per trained tensor: sparsity before/after and how far training moved it (MSE, SQNR of the change). */
  private static List<TensorReport> tensorReports(ModelProto before, ModelProto after, Set<String> names) {
    Map<String, TensorProto> old = new LinkedHashMap<>();
    for (TensorProto t : before.getGraph().getInitializerList()) {
      old.put(t.getName(), t);
    }
    List<TensorReport> out = new ArrayList<>();
    for (TensorProto t : after.getGraph().getInitializerList()) {
      TensorProto o = old.get(t.getName());
      if (o == null || !names.contains(t.getName())) {
        continue;
      }
      float[] a = dev.modelpress.format.onnx.OnnxTensors.toFloats(o);
      float[] b = dev.modelpress.format.onnx.OnnxTensors.toFloats(t);
      ErrorStats stats = new ErrorStats();
      for (int i = 0; i < a.length; i++) {
        stats.add(a[i], b[i]);
      }
      long bytes = 4L * a.length;
      out.add(new TensorReport(t.getName(), t.getDimsList(), a.length, bytes, bytes, stats.sparsityBefore(),
          stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), null, null));
    }
    return out;
  }
}
