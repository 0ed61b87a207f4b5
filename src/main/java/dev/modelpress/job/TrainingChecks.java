package dev.modelpress.job;

import dev.modelpress.api.dto.JobRequest;
import dev.modelpress.api.dto.JobStep;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.compression.TrainSpec;
import dev.modelpress.dataset.DatasetEntity;
import dev.modelpress.dataset.DatasetService;
import dev.modelpress.evaluation.DatasetArrayInfo;
import dev.modelpress.evaluation.InputCompatibility;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.ValueInfo;
import dev.modelpress.format.npy.DType;
import dev.modelpress.model.ModelEntity;
import dev.modelpress.model.ModelService;
import dev.modelpress.system.ApiProblem;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.training.OnnxTranslator;
import dev.modelpress.training.RemovableBlocks;
import dev.modelpress.compression.CompressionException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.UUID;

/**
 * Submit-time checks of training steps that need the stored models and datasets: the training
 * dataset fits the model's inputs (and has labels where the loss needs them), a distillation's
 * teacher and student exist, are ONNX and agree on inputs and outputs.
 */
final class TrainingChecks {

  private final ModelService models;
  private final DatasetService datasets;

  TrainingChecks(ModelService models, DatasetService datasets) {
    this.models = models;
    this.datasets = datasets;
  }

  void check(JobRequest request, List<JobStep> steps, List<StepSpec> specs, ModelEntity model, ModelSummary summary,
      List<ApiProblem.FieldError> errors) {
    boolean labels = false;
    if (request.getTrainingDatasetId() != null) {
      DatasetEntity data = find(() -> datasets.get(request.getTrainingDatasetId()), "trainingDatasetId", "dataset",
          request.getTrainingDatasetId(), errors);
      if (data == null) {
        return;
      }
      List<DatasetArrayInfo> arrays = datasets.arrays(data).stream()
          .map(a -> new DatasetArrayInfo(a.name(), DType.valueOf(a.dtype().toUpperCase(Locale.ROOT)), a.shape()))
          .toList();
      InputCompatibility.check(summary.inputs(), arrays)
          .forEach(m -> errors.add(new ApiProblem.FieldError("trainingDatasetId", m)));
      labels = arrays.stream().anyMatch(a -> InputCompatibility.LABELS.equals(a.name()));
    }
    for (int i = 0; i < specs.size(); i++) {
      if (!(specs.get(i) instanceof TrainSpec t)) {
        continue;
      }
      String at = "steps[" + i + "]";
      if (t.options().loss() == TrainSpec.Loss.CE && !labels) {
        errors.add(new ApiProblem.FieldError("trainingDatasetId", at + " trains on labels (ce), and the training "
            + "dataset has no '" + InputCompatibility.LABELS + "' array"));
      }
      if (t.kind() != TrainSpec.Kind.DISTILL || t.studentModelId() == null && t.teacherModelId() == null) {
        unsupported(model, at + ".type", errors);
      }
      if (t.kind() == TrainSpec.Kind.DISTILL) {
        ModelSummary teacher = summary;
        if (t.teacherModelId() != null) {
          ModelEntity m = find(() -> models.get(t.teacherModelId()), at + ".teacherModelId", "model",
              t.teacherModelId(), errors);
          teacher = m == null ? null : onnxSummary(m, at + ".teacherModelId", errors);
          if (teacher != null) {
            agree(summary, teacher, at + ".teacherModelId", "the job's model", "the teacher", errors);
          }
        }
        if (t.keepLayers() != null && !t.keepLayers().isEmpty()
            && errors.stream().noneMatch(e -> e.field().startsWith(at + ".student"))) {
          ModelEntity teacherEntity = t.teacherModelId() == null ? model
              : find(() -> models.get(t.teacherModelId()), at + ".teacherModelId", "model", t.teacherModelId(),
                  new java.util.ArrayList<>());
          if (teacherEntity != null && teacher != null) {
            layers(teacherEntity, t.keepLayers(), at + ".student.keepLayers", errors);
          }
        }
        if (t.studentModelId() != null) {
          ModelEntity m = find(() -> models.get(t.studentModelId()), at + ".student.modelId", "model",
              t.studentModelId(), errors);
          ModelSummary student = m == null ? null : onnxSummary(m, at + ".student.modelId", errors);
          if (student != null) {
            unsupported(m, at + ".student.modelId", errors);
          }
          if (student != null && teacher != null) {
            agree(teacher, student, at + ".student.modelId", "the teacher", "the student", errors);
          }
        }
      }
    }
  }

  /** Operators the trainer cannot translate, as one error naming each with its nodes. */
  private void unsupported(ModelEntity m, String field, List<ApiProblem.FieldError> errors) {
    Path dir = null;
    try {
      dir = Files.createTempDirectory("training-check-");
      var ops = OnnxTranslator.unsupported(OnnxModels.read(models.localCopy(m, dir)));
      if (!ops.isEmpty()) {
        errors.add(new ApiProblem.FieldError(field, "model " + m.getId() + " cannot be trained: "
            + OnnxTranslator.describe(ops)));
      }
    } catch (IOException | FormatException e) {
      errors.add(new ApiProblem.FieldError(field, "model " + m.getId() + " cannot be read: " + e.getMessage()));
    } finally {
      if (dir != null) {
        try (var files = Files.walk(dir)) {
          files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
          // a temp directory left behind is harmless
        }
      }
    }
  }

  /** A depth derivation needs removable blocks in the teacher and indices among them. */
  private void layers(ModelEntity teacher, List<Integer> keep, String field, List<ApiProblem.FieldError> errors) {
    Path dir = null;
    try {
      dir = Files.createTempDirectory("training-check-");
      RemovableBlocks.Analysis blocks = RemovableBlocks.find(OnnxModels.read(models.localCopy(teacher, dir)));
      String problem = RemovableBlocks.checkKeep(blocks, keep);
      if (problem != null) {
        errors.add(new ApiProblem.FieldError(field, problem));
      }
    } catch (IOException | FormatException | CompressionException e) {
      errors.add(new ApiProblem.FieldError(field, "the layers of model " + teacher.getId() + " cannot be analysed: "
          + e.getMessage()));
    } finally {
      deleteQuietly(dir);
    }
  }

  private static void deleteQuietly(Path dir) {
    if (dir != null) {
      try (var files = Files.walk(dir)) {
        files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
      } catch (IOException ignored) {
        // a temp directory left behind is harmless
      }
    }
  }

  private ModelSummary onnxSummary(ModelEntity m, String field, List<ApiProblem.FieldError> errors) {
    if (!"onnx".equals(m.getFormat())) {
      errors.add(new ApiProblem.FieldError(field, "model " + m.getId() + " is " + m.getFormat()
          + "; training works on ONNX models"));
      return null;
    }
    return models.fullSummary(m);
  }

  /** Teacher and student must take the same inputs and give outputs of the same count and widths. */
  private static void agree(ModelSummary a, ModelSummary b, String field, String aName, String bName,
      List<ApiProblem.FieldError> errors) {
    List<String> ai = a.inputs().stream().map(ValueInfo::name).sorted().toList();
    List<String> bi = b.inputs().stream().map(ValueInfo::name).sorted().toList();
    if (!ai.equals(bi)) {
      errors.add(new ApiProblem.FieldError(field, bName + " takes inputs " + bi + " and " + aName + " " + ai
          + "; they must take the same inputs"));
    }
    if (a.outputs().size() != b.outputs().size()) {
      errors.add(new ApiProblem.FieldError(field, bName + " has " + b.outputs().size() + " outputs and " + aName
          + " " + a.outputs().size() + "; outputs are matched in order"));
      return;
    }
    for (int k = 0; k < a.outputs().size(); k++) {
      List<String> as = a.outputs().get(k).shape();
      List<String> bs = b.outputs().get(k).shape();
      // Dims are numbers or symbolic names; only two fixed widths can disagree.
      if (!as.isEmpty() && !bs.isEmpty() && as.getLast().matches("\\d+") && bs.getLast().matches("\\d+")
          && !as.getLast().equals(bs.getLast())) {
        errors.add(new ApiProblem.FieldError(field, "output " + k + " is " + bs.getLast() + " wide in " + bName
            + " and " + as.getLast() + " in " + aName));
      }
    }
  }

  private static <T> T find(java.util.function.Supplier<T> lookup, String field, String what, UUID id,
      List<ApiProblem.FieldError> errors) {
    try {
      return lookup.get();
    } catch (ApiProblem e) {
      if (e.kind() == ApiProblem.Kind.NOT_FOUND) {
        errors.add(new ApiProblem.FieldError(field, "no " + what + " with id " + id));
        return null;
      }
      throw e;
    }
  }
}
