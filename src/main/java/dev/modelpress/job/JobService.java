package dev.modelpress.job;

import dev.modelpress.api.dto.JobRequest;
import dev.modelpress.api.dto.JobStep;
import dev.modelpress.compression.SpecValidator;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.dataset.DatasetEntity;
import dev.modelpress.dataset.DatasetService;
import dev.modelpress.evaluation.DatasetArrayInfo;
import dev.modelpress.evaluation.InputCompatibility;
import dev.modelpress.format.npy.DType;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.model.ModelEntity;
import dev.modelpress.model.ModelService;
import dev.modelpress.system.ApiProblem;
import dev.modelpress.system.Owners;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.springframework.dao.DataIntegrityViolationException;
import org.springframework.data.domain.Page;
import org.springframework.data.domain.PageRequest;
import org.springframework.stereotype.Service;
import org.springframework.transaction.support.TransactionTemplate;
import tools.jackson.databind.json.JsonMapper;

/** Submission, reads and cancellation of jobs. */
@Service
public class JobService {

  /** A submission's outcome: the job, and whether it was created now or replayed. */
  public record Submitted(JobEntity job, boolean replayed) {}

  private final JobRepository jobs;
  private final ArtifactRepository artifacts;
  private final JobQueue queue;
  private final ModelService models;
  private final DatasetService datasets;
  private final JsonMapper json;
  private final Clock clock;
  private final TransactionTemplate tx;
  private final JobProperties props;
  private final CallbackUrls callbackUrls;
  private final TrainingChecks training;

  JobService(JobRepository jobs, ArtifactRepository artifacts, JobQueue queue, ModelService models,
      DatasetService datasets, JsonMapper json, Clock clock, TransactionTemplate tx, JobProperties props,
      CallbackUrls callbackUrls) {
    this.jobs = jobs;
    this.artifacts = artifacts;
    this.queue = queue;
    this.models = models;
    this.datasets = datasets;
    this.json = json;
    this.clock = clock;
    this.tx = tx;
    this.props = props;
    this.callbackUrls = callbackUrls;
    this.training = new TrainingChecks(models, datasets);
  }

  /** Validates the request against the model and datasets, then queues it (or replays by key). */
  public Submitted submit(JobRequest request, String idempotencyKey) {
    String owner = Owners.current();
    String requestHash = sha256(json.writeValueAsString(request));
    if (idempotencyKey != null) {
      Optional<JobEntity> earlier = jobs.findByOwnerAndIdempotencyKey(owner, idempotencyKey);
      if (earlier.isPresent()) {
        return replay(earlier.get(), requestHash);
      }
    }
    List<JobStep> steps = JobSpecs.normalize(request.getSteps());
    List<StepSpec> specs = JobSpecs.toSpecs(steps);
    ModelEntity model = findReferenced(() -> models.get(request.getModelId()), "modelId", "model", request.getModelId());
    boolean safetensors = "safetensors".equals(model.getFormat());
    if (!safetensors && !"onnx".equals(model.getFormat())) {
      throw new ApiProblem(ApiProblem.Kind.NOT_IMPLEMENTED,
          "compression of " + model.getFormat() + " models is not built yet; ONNX models are supported");
    }
    ModelSummary summary = models.fullSummary(model);
    if (ModelService.isArchive(model)) {
      boolean search = steps.size() == 1 && SearchSpecs.TYPE.equals(steps.getFirst().getType());
      String why = search ? "a search over a model with external data is not built yet"
          : dev.modelpress.compression.ExternalDataQuantizer.unsupported(specs,
              request.getCalibrationDatasetId() != null);
      if (why != null) {
        throw new ApiProblem(ApiProblem.Kind.NOT_IMPLEMENTED, why);
      }
    }
    List<ApiProblem.FieldError> errors = new ArrayList<>();
    if (safetensors) {
      SafetensorsSubmission.check(steps, specs, request, summary, errors);
    } else if (steps.size() == 1 && SearchSpecs.TYPE.equals(steps.getFirst().getType())) {
      boolean labels = false;
      if (request.getEvaluationDatasetId() != null) {
        DatasetEntity data = findReferenced(() -> datasets.get(request.getEvaluationDatasetId()),
            "evaluationDatasetId", "dataset", request.getEvaluationDatasetId());
        labels = datasets.arrays(data).stream().anyMatch(a -> InputCompatibility.LABELS.equals(a.name()));
      }
      steps = List.of(SearchSpecs.resolve(steps.getFirst(), summary, request.getEvaluationDatasetId() != null, labels));
    } else {
      SpecValidator.validate(specs, summary, request.getCalibrationDatasetId() != null)
          .forEach(v -> errors.add(new ApiProblem.FieldError(v.field(), v.message())));
    }
    if (!safetensors) { // SafetensorsSubmission refuses datasets (no graph to feed them to)
      checkDataset(request.getCalibrationDatasetId(), "calibrationDatasetId", summary, errors);
      checkDataset(request.getEvaluationDatasetId(), "evaluationDatasetId", summary, errors);
    }
    // ---- training steps (begin) ----
    if (TrainingSteps.anyTraining(steps)) {
      if (safetensors) {
        errors.add(new ApiProblem.FieldError("steps", "training steps need an ONNX graph to train; safetensors "
            + "checkpoints hold weights only"));
      } else if (request.getTrainingDatasetId() == null) {
        errors.add(new ApiProblem.FieldError("trainingDatasetId", "required: the job has a training step ("
            + "distill, finetune, prune l1 or quantize qat) and training needs samples"));
      } else {
        training.check(request, steps, specs, model, summary, errors);
      }
    } else if (request.getTrainingDatasetId() != null) {
      errors.add(new ApiProblem.FieldError("trainingDatasetId", "no step of this job trains"));
    }
    // ---- training steps (end) ----
    callbackUrls.validate(request.getCallbackUrl())
        .ifPresent(m -> errors.add(new ApiProblem.FieldError("callbackUrl", m)));
    if (!errors.isEmpty()) {
      throw JobSpecs.validation(errors);
    }
    String spec = json.writeValueAsString(new StoredSpec(steps, request.getEvaluationSamples() == null
        ? 256 : request.getEvaluationSamples(), request.getCalibrationSamples()));
    JobEntity job = new JobEntity(UUID.randomUUID(), owner, model.getId(), request.getCalibrationDatasetId(),
        request.getEvaluationDatasetId(),
        spec, idempotencyKey, requestHash, props.maxAttempts(), clock.instant());
    job.setCallbackUrl(request.getCallbackUrl());
    job.setTrainingDatasetId(request.getTrainingDatasetId());
    job.setPriority(request.getPriority() == null ? 0 : request.getPriority());
    try {
      return new Submitted(tx.execute(status -> {
        JobEntity saved = jobs.saveAndFlush(job);
        queue.notifyQueued(saved.getId());
        return saved;
      }), false);
    } catch (DataIntegrityViolationException e) {
      // Two retries with the same key raced; the other one won.
      if (idempotencyKey != null) {
        Optional<JobEntity> winner = jobs.findByOwnerAndIdempotencyKey(owner, idempotencyKey);
        if (winner.isPresent()) {
          return replay(winner.get(), requestHash);
        }
      }
      throw e;
    }
  }

  /**
   * What a job runs, as stored in its {@code spec} column.
   *
   * @param calibrationSamples samples of the calibration dataset to use at most; {@code null} = default
   */
  public record StoredSpec(List<JobStep> steps, int evaluationSamples, Integer calibrationSamples) {}

  /** Checks that a referenced dataset exists and fits the model's inputs, as errors of {@code field}. */
  private void checkDataset(UUID id, String field, ModelSummary summary, List<ApiProblem.FieldError> errors) {
    if (id == null) {
      return;
    }
    DatasetEntity data = findReferenced(() -> datasets.get(id), field, "dataset", id);
    List<DatasetArrayInfo> arrays = datasets.arrays(data).stream()
        .map(a -> new DatasetArrayInfo(a.name(), DType.valueOf(a.dtype().toUpperCase(java.util.Locale.ROOT)), a.shape()))
        .toList();
    InputCompatibility.check(summary.inputs(), arrays).forEach(m -> errors.add(new ApiProblem.FieldError(field, m)));
  }

  public StoredSpec spec(JobEntity job) {
    return json.readValue(job.getSpec(), StoredSpec.class);
  }

  public JobEntity get(UUID id) {
    return jobs.findByIdAndOwner(id, Owners.current()).orElseThrow(() -> ApiProblem.notFound("job", id));
  }

  /** A job by id whoever owns it: for workers. */
  public Optional<JobEntity> find(UUID id) {
    return jobs.findById(id);
  }

  public Page<JobEntity> list(JobState state, UUID modelId, int page, int size) {
    return jobs.search(Owners.current(), state, modelId, PageRequest.of(page, size));
  }

  public List<ArtifactEntity> artifacts(UUID jobId) {
    return artifacts.findByKeyJobIdOrderByKeyName(jobId);
  }

  public ArtifactEntity artifact(UUID jobId, String name) {
    get(jobId);
    return artifacts.findById(new ArtifactEntity.Key(jobId, name))
        .orElseThrow(() -> ApiProblem.notFound("artifact", name + " of job " + jobId));
  }

  /** Cancels a queued job or asks a running one to stop. */
  public JobEntity cancel(UUID id) {
    switch (queue.requestCancel(id, Owners.current())) {
      case NOT_FOUND -> throw ApiProblem.notFound("job", id);
      case ALREADY_FINISHED -> throw new ApiProblem(ApiProblem.Kind.JOB_NOT_CANCELLABLE,
          "job " + id + " has already finished (" + get(id).getState() + ")");
      default -> { }
    }
    return get(id);
  }

  private Submitted replay(JobEntity earlier, String requestHash) {
    if (!requestHash.equals(earlier.getRequestHash())) {
      throw new ApiProblem(ApiProblem.Kind.IDEMPOTENCY_CONFLICT,
          "Idempotency-Key was already used for job " + earlier.getId() + " with a different request body");
    }
    return new Submitted(earlier, true);
  }

  private static <T> T findReferenced(java.util.function.Supplier<T> lookup, String field, String what, UUID id) {
    try {
      return lookup.get();
    } catch (ApiProblem e) {
      if (e.kind() == ApiProblem.Kind.NOT_FOUND) {
        throw JobSpecs.validation(List.of(new ApiProblem.FieldError(field, "no " + what + " with id " + id)));
      }
      throw e;
    }
  }

  static String sha256(String s) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

}
