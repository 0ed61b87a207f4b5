package dev.modelpress.job;

import dev.modelpress.api.dto.JobStep;
import dev.modelpress.api.dto.Student;
import dev.modelpress.api.dto.TrainingOptions;
import dev.modelpress.compression.QuantizeSpec;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.compression.TrainSpec;
import dev.modelpress.system.ApiProblem;
import java.util.List;
import java.util.Locale;

/**
 * The training steps of the API ({@code distill}, {@code finetune}, {@code prune} with {@code
 * method: l1}, {@code quantize} with {@code method: qat}): defaults, field errors with their paths,
 * and the mapping to {@link TrainSpec}. Kept apart from {@link JobSpecs} like {@link
 * CalibratedSteps}.
 */
final class TrainingSteps {

  static final String DISTILL = "distill";
  static final String FINETUNE = "finetune";
  static final String L1 = "l1";
  static final String QAT = "qat";

  static final int DEFAULT_EPOCHS = 5;
  static final int DEFAULT_BATCH = 64;
  static final double DEFAULT_LEARNING_RATE = 1e-3;
  static final double DEFAULT_VALIDATION_SPLIT = 0.1;
  static final double DEFAULT_TEMPERATURE = 4;
  static final double DEFAULT_ALPHA = 0.9;
  static final double DEFAULT_L1 = 1e-4;
  static final double DEFAULT_WIDTH = 0.5;

  private TrainingSteps() {}

  /** Whether the (normalized) step trains. */
  static boolean isTraining(JobStep s) {
    return DISTILL.equals(s.getType()) || FINETUNE.equals(s.getType())
        || "prune".equals(s.getType()) && L1.equals(s.getMethod())
        || "quantize".equals(s.getType()) && QAT.equals(s.getMethod());
  }

  /** Whether any step of the job trains (and so needs {@code trainingDatasetId}). */
  static boolean anyTraining(List<JobStep> steps) {
    return steps.stream().anyMatch(TrainingSteps::isTraining);
  }

  /** Copies the training fields into a normalized step, filling defaults when the step trains. */
  static void normalize(JobStep from, JobStep to) {
    to.setTeacherModelId(from.getTeacherModelId());
    Student st = from.getStudent();
    if (DISTILL.equals(to.getType())) {
      st = st == null ? new Student() : st;
      boolean derivesNothing = st.getModelId() == null && st.getWidth() == null && st.getKeepLayers() == null;
      to.setStudent(new Student().modelId(st.getModelId()).keepLayers(st.getKeepLayers())
          .width(derivesNothing ? Double.valueOf(DEFAULT_WIDTH) : st.getWidth()));
    } else {
      to.setStudent(st);
    }
    if (!isTraining(to)) {
      to.setTraining(from.getTraining());
      return;
    }
    TrainingOptions t = from.getTraining() == null ? new TrainingOptions() : from.getTraining();
    boolean distill = DISTILL.equals(to.getType());
    boolean onLabels = !distill && "labels".equalsIgnoreCase(t.getTeacher());
    String loss = t.getLoss() != null ? lower(t.getLoss()) : onLabels ? "ce" : "kd";
    boolean kd = "kd".equals(loss);
    to.setTraining(new TrainingOptions()
        .epochs(t.getEpochs() == null ? DEFAULT_EPOCHS : t.getEpochs())
        .batchSize(t.getBatchSize() == null ? DEFAULT_BATCH : t.getBatchSize())
        .learningRate(t.getLearningRate() == null ? DEFAULT_LEARNING_RATE : t.getLearningRate())
        .schedule(t.getSchedule() == null ? "cosine" : lower(t.getSchedule()))
        .warmupSteps(t.getWarmupSteps() == null ? 0 : t.getWarmupSteps())
        .seed(t.getSeed() == null ? 0L : t.getSeed())
        .validationSplit(t.getValidationSplit() == null ? DEFAULT_VALIDATION_SPLIT : t.getValidationSplit())
        .patience(t.getPatience())
        .samples(t.getSamples())
        .loss(loss)
        .temperature(t.getTemperature() == null && kd ? Double.valueOf(DEFAULT_TEMPERATURE) : t.getTemperature())
        .alpha(t.getAlpha() == null && kd ? Double.valueOf(DEFAULT_ALPHA) : t.getAlpha())
        .tensors(t.getTensors())
        .teacher(distill ? t.getTeacher() : t.getTeacher() == null ? "original" : lower(t.getTeacher()))
        .l1(L1.equals(to.getMethod()) && t.getL1() == null ? Double.valueOf(DEFAULT_L1) : t.getL1()));
  }

  /** Rejects the training fields on a step that does not train. */
  static void forbid(JobStep s, String at, List<ApiProblem.FieldError> errors) {
    if (s.getTraining() != null) {
      errors.add(new ApiProblem.FieldError(at + ".training", "only training steps take it: distill, finetune, "
          + "prune with method l1, quantize with method qat"));
    }
    if (s.getTeacherModelId() != null) {
      errors.add(new ApiProblem.FieldError(at + ".teacherModelId", "only a distill step takes a teacher"));
    }
    if (s.getStudent() != null) {
      errors.add(new ApiProblem.FieldError(at + ".student", "only a distill step takes a student"));
    }
  }

  /** The spec of a training step; every invalid field is added to {@code errors}. */
  static StepSpec toSpec(JobStep s, String at, List<ApiProblem.FieldError> errors) {
    TrainingOptions t = s.getTraining();
    if (t == null) { // stored before normalization could fill it: normalize again (idempotent)
      JobStep n = new JobStep(s.getType());
      n.setMethod(s.getMethod());
      normalize(s, n);
      t = n.getTraining();
    }
    String f = at + ".training.";
    TrainSpec.Kind kind = switch (s.getType()) {
      case DISTILL -> TrainSpec.Kind.DISTILL;
      case FINETUNE -> TrainSpec.Kind.FINETUNE;
      case "prune" -> TrainSpec.Kind.L1_PRUNE;
      default -> TrainSpec.Kind.QAT;
    };
    range(errors, f + "epochs", t.getEpochs(), 1, 1000);
    range(errors, f + "batchSize", t.getBatchSize(), 1, 4096);
    if (!(t.getLearningRate() > 0 && t.getLearningRate() <= 1)) {
      errors.add(new ApiProblem.FieldError(f + "learningRate", "must be in (0, 1] (got " + t.getLearningRate() + ")"));
    }
    if (t.getWarmupSteps() < 0) {
      errors.add(new ApiProblem.FieldError(f + "warmupSteps", "must not be negative"));
    }
    if (!(t.getValidationSplit() >= 0 && t.getValidationSplit() <= 0.5)) {
      errors.add(new ApiProblem.FieldError(f + "validationSplit",
          "must be in [0, 0.5] (got " + t.getValidationSplit() + ")"));
    }
    if (t.getPatience() != null && t.getPatience() < 1) {
      errors.add(new ApiProblem.FieldError(f + "patience", "must be at least 1"));
    }
    if (t.getPatience() != null && t.getValidationSplit() == 0) {
      errors.add(new ApiProblem.FieldError(f + "patience", "early stopping needs a validation split above 0"));
    }
    if (t.getSamples() != null && t.getSamples() < 1) {
      errors.add(new ApiProblem.FieldError(f + "samples", "must be at least 1"));
    }
    TrainSpec.Schedule schedule = JobSpecs.parse(TrainSpec.Schedule.class, t.getSchedule(), f + "schedule",
        "constant, step or cosine", errors, TrainSpec.Schedule.COSINE);
    TrainSpec.Loss loss = JobSpecs.parse(TrainSpec.Loss.class, t.getLoss(), f + "loss", "kd, ce, mse or cosine", errors,
        TrainSpec.Loss.KD);
    double temperature = t.getTemperature() == null ? DEFAULT_TEMPERATURE : t.getTemperature();
    double alpha = t.getAlpha() == null ? DEFAULT_ALPHA : t.getAlpha();
    if (loss == TrainSpec.Loss.KD) {
      if (!(temperature > 0 && temperature <= 100)) {
        errors.add(new ApiProblem.FieldError(f + "temperature", "must be in (0, 100] (got " + temperature + ")"));
      }
      if (!(alpha >= 0 && alpha <= 1)) {
        errors.add(new ApiProblem.FieldError(f + "alpha", "must be in [0, 1] (got " + alpha + ")"));
      }
    } else {
      forbidOption(errors, f + "temperature", t.getTemperature(), "kd");
      forbidOption(errors, f + "alpha", t.getAlpha(), "kd");
    }
    if (!t.getTensors().isEmpty() && loss != TrainSpec.Loss.MSE && loss != TrainSpec.Loss.COSINE) {
      errors.add(new ApiProblem.FieldError(f + "tensors", "only the mse and cosine losses compare named tensors"));
    }
    TrainSpec.Teacher teacher = null;
    if (kind != TrainSpec.Kind.DISTILL) {
      teacher = JobSpecs.parse(TrainSpec.Teacher.class, t.getTeacher() == null ? "original" : t.getTeacher(), f + "teacher",
          "original or labels", errors, TrainSpec.Teacher.ORIGINAL);
      if (teacher == TrainSpec.Teacher.LABELS && loss != TrainSpec.Loss.CE) {
        errors.add(new ApiProblem.FieldError(f + "loss", "training on labels uses ce"));
      }
      if (teacher == TrainSpec.Teacher.ORIGINAL && loss == TrainSpec.Loss.CE) {
        errors.add(new ApiProblem.FieldError(f + "loss", "ce trains on labels: set teacher to labels"));
      }
    } else {
      forbidOption(errors, f + "teacher", t.getTeacher(), "finetune, prune l1 and quantize qat (distill names "
          + "its teacher with teacherModelId)");
    }
    if (kind == TrainSpec.Kind.L1_PRUNE) {
      if (!(t.getL1() > 0 && t.getL1() < 1)) {
        errors.add(new ApiProblem.FieldError(f + "l1", "must be in (0, 1) (got " + t.getL1() + ")"));
      }
    } else {
      forbidOption(errors, f + "l1", t.getL1(), "prune with method l1");
    }
    Double width = null;
    List<Integer> keepLayers = null;
    java.util.UUID studentModel = null;
    if (kind == TrainSpec.Kind.DISTILL) {
      Student st = s.getStudent() == null ? new Student().width(DEFAULT_WIDTH) : s.getStudent();
      studentModel = st.getModelId();
      width = st.getWidth();
      keepLayers = st.getKeepLayers();
      if ((studentModel == null) == (width == null && keepLayers == null)) {
        errors.add(new ApiProblem.FieldError(at + ".student", "give either modelId or a derivation (width, keepLayers "
            + "or both)"));
      }
      if (width != null && !(width > 0 && width < 1)) {
        errors.add(new ApiProblem.FieldError(at + ".student.width", "must be in (0, 1) (got " + width + ")"));
      }
      // The model-dependent checks of keepLayers (the teacher's blocks, index range) are TrainingChecks'.
      if (keepLayers != null && keepLayers.isEmpty()) {
        errors.add(new ApiProblem.FieldError(at + ".student.keepLayers", "keeps no layer: removing every removable "
            + "block leaves nothing to train"));
      }
      if (keepLayers != null && keepLayers.stream().anyMatch(java.util.Objects::isNull)) {
        errors.add(new ApiProblem.FieldError(at + ".student.keepLayers", "holds null"));
        keepLayers = null;
      }
      if (keepLayers != null && keepLayers.stream().distinct().count() < keepLayers.size()) {
        errors.add(new ApiProblem.FieldError(at + ".student.keepLayers", "names a layer twice"));
      }
      if (keepLayers != null && keepLayers.stream().anyMatch(i -> i < 0)) {
        errors.add(new ApiProblem.FieldError(at + ".student.keepLayers", "indices start at 0"));
      }
    }
    QuantizeSpec quantize = kind == TrainSpec.Kind.QAT ? JobSpecs.quantizeSpec(s, at, errors) : null;
    if (quantize != null && quantize.dtype() != QuantizeSpec.WeightType.INT) {
      errors.add(new ApiProblem.FieldError(at + ".weights.dtype", "qat trains for an integer grid; fp16/bf16 need none"));
    }
    if (quantize != null && quantize.scheme() != QuantizeSpec.Scheme.INTEGER) {
      errors.add(new ApiProblem.FieldError(at + ".weights.scheme", "qat supports the int scheme"));
    }
    TrainSpec.Options options = new TrainSpec.Options(t.getEpochs(), t.getBatchSize(), t.getLearningRate(), schedule,
        t.getWarmupSteps(), t.getSeed(), t.getValidationSplit(), t.getPatience(), t.getSamples(), loss, temperature,
        alpha, t.getTensors(), teacher, kind == TrainSpec.Kind.L1_PRUNE ? t.getL1() : null);
    return new TrainSpec(kind, options, s.getTeacherModelId(), studentModel, width, keepLayers,
        kind == TrainSpec.Kind.L1_PRUNE ? s.getSparsity() : null,
        kind == TrainSpec.Kind.L1_PRUNE ? s.getThreshold() : null, quantize,
        s.getInclude() == null ? List.of() : s.getInclude(), s.getExclude() == null ? List.of() : s.getExclude());
  }

  private static void range(List<ApiProblem.FieldError> errors, String field, Integer v, int min, int max) {
    if (v == null || v < min || v > max) {
      errors.add(new ApiProblem.FieldError(field, "must be from " + min + " to " + max + " (got " + v + ")"));
    }
  }

  private static void forbidOption(List<ApiProblem.FieldError> errors, String field, Object value, String only) {
    if (value != null) {
      errors.add(new ApiProblem.FieldError(field, "only used by " + only));
    }
  }

  private static String lower(String s) {
    return s == null ? null : s.toLowerCase(Locale.ROOT);
  }
}
