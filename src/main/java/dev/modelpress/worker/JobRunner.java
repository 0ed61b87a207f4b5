package dev.modelpress.worker;

import dev.modelpress.api.dto.JobProgress;
import dev.modelpress.api.dto.ReportSummary;
import dev.modelpress.compression.CompressionCancelledException;
import dev.modelpress.compression.CompressionException;
import dev.modelpress.compression.ExternalDataQuantizer;
import dev.modelpress.compression.QuantizeSpec;
import dev.modelpress.compression.StepReport;
import dev.modelpress.compression.OnnxPipeline;
import dev.modelpress.compression.PipelineContext;
import dev.modelpress.compression.PipelineResult;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.dataset.DatasetEntity;
import dev.modelpress.dataset.DatasetService;
import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.evaluation.EvaluationOptions;
import dev.modelpress.evaluation.FidelityEvaluator;
import dev.modelpress.evaluation.FidelityReport;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxArchive;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.job.JobEntity;
import dev.modelpress.job.JobQueue;
import dev.modelpress.job.JobService;
import dev.modelpress.job.JobSpecs;
import dev.modelpress.job.SearchSpecs;
import dev.modelpress.model.ModelEntity;
import dev.modelpress.model.ModelService;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.system.ApiProblem;
import dev.modelpress.system.Problems;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.springframework.stereotype.Component;
import tools.jackson.databind.json.JsonMapper;

/**
 * Runs one claimed job: fetch the model, run the compression pipeline, measure the result in ONNX
 * Runtime when an evaluation dataset is given, store the artifacts, then record success, all
 * outside any database transaction. Errors in the user's input fail the job with a problem
 * document; a lost lease or shutdown stops it without writing anything.
 */
@Component
class JobRunner {

  private static final Logger log = LoggerFactory.getLogger(JobRunner.class);

  private final JobService jobs;
  private final JobQueue queue;
  private final ModelService models;
  private final DatasetService datasets;
  private final ArtifactStore store;
  private final JsonMapper json;
  private final Clock clock;
  private final WorkerProperties props;

  JobRunner(JobService jobs, JobQueue queue, ModelService models, DatasetService datasets, ArtifactStore store,
      JsonMapper json, Clock clock, WorkerProperties props) {
    this.jobs = jobs;
    this.queue = queue;
    this.models = models;
    this.datasets = datasets;
    this.store = store;
    this.json = json;
    this.clock = clock;
    this.props = props;
  }

  void run(JobExecution exec) {
    JobQueue.Claim claim = exec.claim;
    MDC.put("job", claim.jobId().toString());
    Path work = props.workDir().resolve(claim.jobId() + "-" + claim.attempt());
    List<String> storedKeys = new ArrayList<>();
    try {
      Files.createDirectories(work);
      JobEntity job = jobs.find(claim.jobId()).orElseThrow();
      log.info("Running job {} (attempt {})", claim.jobId(), claim.attempt());
      Outcome outcome = execute(job, exec, work, storedKeys);
      boolean recorded = outcome.cancelled() // a cancelled search keeps what it found
          ? queue.cancelledWithArtifacts(claim, json.writeValueAsString(outcome.summary()), outcome.progress(),
              outcome.artifacts())
          : queue.succeed(claim, json.writeValueAsString(outcome.summary()), outcome.progress(), outcome.artifacts());
      if (!recorded) {
        log.warn("Job {} finished but its lease was lost; discarding this attempt's artifacts", claim.jobId());
        deleteQuietly(storedKeys);
      } else {
        log.info("Job {} succeeded: {} -> {} bytes", claim.jobId(), outcome.summary().getBytesBefore(),
            outcome.summary().getBytesAfter());
        deleteCheckpoints(claim.jobId());
      }
    } catch (CompressionCancelledException e) {
      deleteQuietly(storedKeys);
      JobExecution.StopReason reason = exec.stopReason();
      switch (reason == null ? JobExecution.StopReason.CANCELLED : reason) {
        case CANCELLED -> {
          queue.cancelled(claim);
          deleteCheckpoints(claim.jobId());
          log.info("Job {} cancelled", claim.jobId());
        }
        case SHUTDOWN -> {
          queue.release(claim);
          log.info("Job {} handed back to the queue on shutdown", claim.jobId());
        }
        case LEASE_LOST -> log.warn("Job {} stopped: lease lost to another worker", claim.jobId());
      }
    } catch (CompressionException | FormatException | EvaluationException e) {
      deleteQuietly(storedKeys);
      fail(claim, ApiProblem.Kind.JOB_FAILED, e.getMessage());
    } catch (MissingInput e) {
      deleteQuietly(storedKeys);
      fail(claim, ApiProblem.Kind.JOB_FAILED, e.getMessage());
    } catch (StorageFailure e) {
      // The store refused a write: say so (no artifact row was written, so none points to a missing object).
      deleteQuietly(storedKeys);
      log.warn("Job {}: {}", claim.jobId(), e.getMessage(), e.getCause());
      fail(claim, ApiProblem.Kind.STORAGE_UNAVAILABLE, e.getMessage());
    } catch (Exception | OutOfMemoryError | StackOverflowError e) {
      deleteQuietly(storedKeys);
      if (databaseUnavailable(e)) {
        // PostgreSQL went away under the attempt (restart, failover, a pooled connection that died
        // with the server): nothing is wrong with the job, so hand it back for another attempt. If
        // the database is still away, the lease runs out and the job is claimed again later.
        log.warn("Job {}: the database became unavailable ({}); handing the job back to the queue", claim.jobId(),
            e.toString());
        try {
          queue.release(claim);
        } catch (RuntimeException again) {
          log.warn("Job {}: release failed too ({}); the lease will expire", claim.jobId(), again.toString());
        }
        return;
      }
      String incident = UUID.randomUUID().toString();
      log.error("Job {} failed unexpectedly, incident {}", claim.jobId(), incident, e);
      fail(claim, ApiProblem.Kind.INTERNAL, "an unexpected error stopped the job; quote incident " + incident);
    } finally {
      deleteTree(work);
      MDC.remove("job");
    }
  }

  /**
   * Whether {@code e} (or a cause) says the database connection failed rather than the job: SQL
   * state class 08 (connection exception) or 57P (operator intervention, e.g. the server shutting
   * down), a transient or recoverable JDBC connection exception, or a transaction that could not
   * even begin.
   */
  static boolean databaseUnavailable(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof java.sql.SQLTransientConnectionException || t instanceof java.sql.SQLRecoverableException
          || t instanceof java.sql.SQLNonTransientConnectionException
          || t instanceof org.springframework.transaction.CannotCreateTransactionException) {
        return true;
      }
      if (t instanceof java.sql.SQLException sql && sql.getSQLState() != null
          && (sql.getSQLState().startsWith("08") || sql.getSQLState().startsWith("57P"))) {
        return true;
      }
    }
    return false;
  }

  private record Outcome(ReportSummary summary, String progress, List<JobQueue.NewArtifact> artifacts,
      boolean cancelled) {
    Outcome(ReportSummary summary, String progress, List<JobQueue.NewArtifact> artifacts) {
      this(summary, progress, artifacts, false);
    }
  }

  private static final class MissingInput extends RuntimeException {
    MissingInput(String message) {
      super(message);
    }
  }

  private Outcome execute(JobEntity job, JobExecution exec, Path work, List<String> storedKeys)
      throws IOException, FormatException, EvaluationException {
    Instant started = clock.instant();
    JobService.StoredSpec spec = jobs.spec(job);
    List<StepSpec> steps = JobSpecs.toSpecs(spec.steps());
    // The worker acts for the job's owner: it reads only that tenant's model and dataset.
    ModelEntity model = models.find(job.getModelId(), job.getOwner())
        .orElseThrow(() -> new MissingInput("model " + job.getModelId() + " was deleted before the job ran"));
    DatasetEntity evaluation = job.getEvaluationDatasetId() == null ? null
        : datasets.find(job.getEvaluationDatasetId(), job.getOwner()).orElseThrow(() ->
            new MissingInput("dataset " + job.getEvaluationDatasetId() + " was deleted before the job ran"));
    DatasetEntity calibration = job.getCalibrationDatasetId() == null ? null
        : datasets.find(job.getCalibrationDatasetId(), job.getOwner()).orElseThrow(() ->
            new MissingInput("dataset " + job.getCalibrationDatasetId() + " was deleted before the job ran"));
    int phases = steps.size() + (evaluation == null ? 0 : 1);

    if (ModelService.isArchive(model)) {
      return executeExternal(job, exec, work, storedKeys, spec, steps, model, evaluation, started);
    }
    Path originalFile = models.localCopy(model, work);
    if ("safetensors".equals(model.getFormat())) {
      SafetensorsJob.Done done = new SafetensorsJob(store, json, clock)
          .run(job, exec, spec, steps, model, originalFile, work, storedKeys, this::progress);
      return new Outcome(done.summary(), progress(1, 1, "done", 1, 1, "finished"), done.artifacts());
    }
    ModelProto original = OnnxModels.read(originalFile);
    exec.checkpoint();
    if (spec.steps().size() == 1 && SearchSpecs.TYPE.equals(spec.steps().getFirst().getType())) {
      if (evaluation == null) {
        throw new MissingInput("a search job needs its evaluation dataset");
      }
      return executeSearch(job, exec, work, storedKeys, spec, model, evaluation, originalFile, original);
    }
    PipelineContext context = new PipelineContext(calibration == null ? null : datasets.load(calibration, work), work,
        spec.calibrationSamples() == null ? PipelineContext.DEFAULT_MAX_CALIBRATION_SAMPLES : spec.calibrationSamples(),
        8, props.evaluationThreads());
    // ---- training steps (begin) ----
    DatasetEntity training = job.getTrainingDatasetId() == null ? null
        : datasets.find(job.getTrainingDatasetId(), job.getOwner()).orElseThrow(() ->
            new MissingInput("dataset " + job.getTrainingDatasetId() + " was deleted before the job ran"));
    context = context.withTraining(new TrainingStage(store, job.getId(), trainingInputs(job, training, originalFile, work),
        work, props.evaluationThreads()));
    // ---- training steps (end) ----
    PipelineResult result = OnnxPipeline.run(original, steps, context, (step, total, type, item, items, message) -> {
      exec.step(step, type);
      // The pipeline counts steps from 0; progress reports them from 1.
      exec.progress(progress(step + 1, phases, type, item, items, message));
      exec.checkpoint();
    });
    exec.endStep();
    Path outFile = work.resolve("model.onnx");
    OnnxModels.write(result.model(), outFile);
    PruningOutputs pruning = new PruningOutputs(steps, work);
    pruning.afterCompression(result.model(), outFile);
    Instant compressed = clock.instant();

    FidelityReport fidelity = evaluation == null ? null
        : evaluate(exec, phases, evaluation, work, originalFile, outFile, spec.evaluationSamples());
    pruning.afterEvaluation(originalFile, outFile, fidelity, props.evaluationThreads(),
        OnnxModels.summarize(original).inputs());
    Instant evaluated = clock.instant();

    long bytesBefore = Files.size(originalFile);
    long bytesAfter = Files.size(outFile);
    ReportSummary summary = summarize(result, fidelity, bytesBefore, bytesAfter, model.getParameterCount());
    JobReport report = new JobReport(job, exec.claim.attempt(), model, null, spec.steps(), summary);
    // -- report sections (size, per-layer breakdown) read by the report page (docs/reports.md) --
    List<ReportSections.Layer> layers = ReportSections.layers(result);
    report.put("size", ReportSections.size(bytesBefore, bytesAfter, model.getParameterCount(),
        OnnxModels.summarize(result.model()).parameterCount(), layers));
    report.put("layers", layers);
    // -- end report sections --
    report.put("stepReports", result.steps())
        .putIfPresent("fidelity", fidelity)
        .put("timings", JobReport.timings(started, compressed, evaluated))
        .putAll(pruning.sections());
    // -- provenance: versions, input digests, seeds and the request that reproduces the artifact --
    Map<String, Object> provenance = new LinkedHashMap<>(Provenance.describe());
    Map<String, Object> inputs = new LinkedHashMap<>();
    inputs.put("model", JobReport.input(model));
    if (training != null) {
      inputs.put("trainingDataset", JobReport.input(training));
    }
    if (evaluation != null) {
      inputs.put("evaluationDataset", JobReport.input(evaluation));
    }
    String specJson = json.writeValueAsString(spec);
    inputs.put("specSha256", Provenance.sha256(specJson));
    inputs.put("spec", json.readTree(specJson));
    provenance.put("inputs", inputs);
    provenance.put("seeds", Provenance.seeds(json.valueToTree(spec.steps())));
    provenance.put("evaluation", evaluation == null ? null : ReportSections.ordered(
        "intraOpThreads", props.evaluationThreads(),
        "interOpThreads", 1, "executionMode", "SEQUENTIAL", "samples", spec.evaluationSamples()));
    Map<String, Object> reproduce = new LinkedHashMap<>();
    reproduce.put("modelId", model.getId());
    reproduce.put("steps", spec.steps());
    if (calibration != null) {
      reproduce.put("calibrationDatasetId", calibration.getId());
      reproduce.put("calibrationSamples", spec.calibrationSamples());
    }
    if (training != null) {
      reproduce.put("trainingDatasetId", training.getId());
    }
    if (evaluation != null) {
      reproduce.put("evaluationDatasetId", evaluation.getId());
      reproduce.put("evaluationSamples", spec.evaluationSamples());
    }
    provenance.put("reproduce", reproduce);
    provenance.put("output",
        ReportSections.ordered("name", "model.onnx", "bytes", bytesAfter, "sha256", Provenance.sha256(outFile)));
    report.put("provenance", provenance);
    // -- end provenance --
    Path reportFile = report.write(json, work);

    AttemptArtifacts uploads = new AttemptArtifacts(store, job, exec.claim.attempt(), storedKeys);
    List<JobQueue.NewArtifact> artifacts = new ArrayList<>();
    artifacts.add(uploads.put(outFile, "model.onnx", "application/octet-stream"));
    artifacts.add(uploads.put(reportFile, "report.json", "application/json"));
    for (PruningOutputs.Extra extra : pruning.extras()) {
      artifacts.add(uploads.put(extra.file(), extra.name(), extra.contentType()));
    }
    return new Outcome(summary, progress(phases, phases, "done", 1, 1, "finished"), artifacts);
  }

  /**
   * The last phase of a job with an evaluation dataset: run the original and the result in ONNX
   * Runtime on it and measure fidelity and latency.
   */
  private FidelityReport evaluate(JobExecution exec, int phases, DatasetEntity evaluation, Path work, Path original,
      Path candidate, int samples) throws IOException, FormatException, EvaluationException {
    exec.step(phases, "evaluate");
    exec.progress(progress(phases, phases, "evaluate", 0, 1, "running original and result in ONNX Runtime"));
    exec.checkpoint();
    List<NdArray> data = datasets.load(evaluation, work);
    FidelityReport fidelity;
    try (FidelityEvaluator evaluator = new FidelityEvaluator(props.evaluationThreads())) {
      fidelity = evaluator.compare(original, candidate, data, EvaluationOptions.defaults().withMaxSamples(samples));
    }
    exec.endStep();
    exec.checkpoint();
    return fidelity;
  }

  // ---- training steps (begin) ----
  private TrainingStage.Inputs trainingInputs(JobEntity job, DatasetEntity training, Path originalFile, Path work) {
    return new TrainingStage.Inputs() {
      private List<NdArray> data;
      private final Map<UUID, Path> files = new HashMap<>();

      @Override
      public List<NdArray> trainingData() throws IOException, FormatException {
        if (training == null) {
          throw new MissingInput("a training step needs the job's trainingDatasetId");
        }
        if (data == null) {
          data = datasets.load(training, work);
        }
        return data;
      }

      @Override
      public Path originalFile() {
        return originalFile;
      }

      @Override
      public Path modelFile(UUID id) throws IOException {
        Path file = files.get(id);
        if (file == null) {
          ModelEntity m = models.find(id, job.getOwner())
              .orElseThrow(() -> new MissingInput("model " + id + " was deleted before the job ran"));
          Path dir = Files.createDirectories(work.resolve("model-" + id));
          file = models.localCopy(m, dir);
          files.put(id, file);
        }
        return file;
      }
    };
  }

  /** A job that ended (succeeded, failed or cancelled) needs its training checkpoints no more. */
  private void deleteCheckpoints(UUID jobId) {
    try {
      store.deletePrefix(TrainingStage.checkpointPrefix(jobId));
    } catch (RuntimeException e) {
      log.warn("Job {}: training checkpoints not deleted ({}); the orphan sweeper will", jobId, e.toString());
    }
  }
  // ---- training steps (end) ----

  /**
   * A model uploaded as an archive with external data: unpack it under the upload limits, run the
   * streaming weight-only quantizer (bounded heap, one tensor and one piece at a time) from the
   * unpacked {@code .onnx} to {@code model.onnx} + {@code model.onnx.data}, evaluate both in ONNX
   * Runtime when the job has an evaluation dataset, and store the pair as artifacts beside the report.
   * Submit has already refused (501) every step this path cannot run.
   */
  private Outcome executeExternal(JobEntity job, JobExecution exec, Path work, List<String> storedKeys,
      JobService.StoredSpec spec, List<StepSpec> steps, ModelEntity model, DatasetEntity evaluation, Instant started)
      throws IOException, FormatException, EvaluationException {
    String unsupported = ExternalDataQuantizer.unsupported(steps, job.getCalibrationDatasetId() != null);
    if (unsupported != null) {
      throw new CompressionException(unsupported);
    }
    Path archive = models.localCopy(model, work);
    Path input = Files.createDirectories(work.resolve("input"));
    Path modelFile = OnnxArchive.unpack(archive, input, models.limits());
    exec.checkpoint();
    Path output = Files.createDirectories(work.resolve("output"));
    Path outFile = output.resolve("model.onnx");
    int phases = evaluation == null ? 1 : 2;
    StepReport step = ExternalDataQuantizer.quantize(modelFile, outFile, (QuantizeSpec) steps.getFirst(),
        (index, total, type, item, items, message) -> {
          exec.step(index, type);
          exec.progress(progress(index + 1, phases, type, item, items, message));
          exec.checkpoint();
        });
    exec.endStep();
    Instant compressed = clock.instant();
    // ONNX Runtime loads both models from their directories (external data beside them) into
    // native memory; the JVM heap holds only the dataset and the outputs of one batch.
    FidelityReport fidelity = evaluation == null ? null
        : evaluate(exec, phases, evaluation, work, modelFile, outFile, spec.evaluationSamples());
    Path dataFile = output.resolve("model.onnx.data");
    long bytesBefore;
    try (Stream<Path> files = Files.walk(input)) {
      bytesBefore = files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    }
    long bytesAfter = Files.size(outFile) + Files.size(dataFile);
    PipelineResult result = new PipelineResult(null, List.of(step));
    ReportSummary summary = summarize(result, fidelity, bytesBefore, bytesAfter, model.getParameterCount());
    Instant evaluated = clock.instant();
    Path reportFile = new JobReport(job, exec.claim.attempt(), model, null, spec.steps(), summary)
        .put("layers", ReportSections.layers(result))
        .put("stepReports", result.steps())
        .put("output", ReportSections.ordered("layout", "model.onnx + model.onnx.data (external data; download both "
            + "into one directory)", "modelBytes", Files.size(outFile), "dataBytes", Files.size(dataFile)))
        .putIfPresent("fidelity", fidelity)
        .put("timings", JobReport.timings(started, compressed, evaluated))
        .write(json, work);
    AttemptArtifacts uploads = new AttemptArtifacts(store, job, exec.claim.attempt(), storedKeys);
    List<JobQueue.NewArtifact> artifacts = new ArrayList<>();
    artifacts.add(uploads.put(outFile, "model.onnx", "application/octet-stream"));
    artifacts.add(uploads.put(dataFile, "model.onnx.data", "application/octet-stream"));
    artifacts.add(uploads.put(reportFile, "report.json", "application/json"));
    return new Outcome(summary, progress(phases, phases, "done", 1, 1, "finished"), artifacts);
  }

  private Outcome executeSearch(JobEntity job, JobExecution exec, Path work, List<String> storedKeys,
      JobService.StoredSpec spec, ModelEntity model, DatasetEntity evaluation, Path originalFile, ModelProto original)
      throws IOException, FormatException, EvaluationException {
    SearchSpecs.Search search = SearchSpecs.read(spec.steps().getFirst());
    List<NdArray> data = datasets.load(evaluation, work);
    AttemptArtifacts uploads = new AttemptArtifacts(store, job, exec.claim.attempt(), storedKeys);
    SearchRunner.Result result = new SearchRunner(store, json, clock, props.evaluationThreads())
        .run(search, exec, work, originalFile, original, data, spec.evaluationSamples(), uploads.key("model.onnx"),
            storedKeys);
    result.summary().parameters(model.getParameterCount());
    JobReport report = new JobReport(job, exec.claim.attempt(), model, null, spec.steps(), result.summary())
        .put("search", result.section());
    Map<String, Object> provenance = new LinkedHashMap<>(Provenance.describe());
    provenance.put("inputs", ReportSections.ordered("model", JobReport.input(model),
        "evaluationDataset", JobReport.input(evaluation),
        "specSha256", Provenance.sha256(json.writeValueAsString(spec))));
    if (result.best() != null) {
      provenance.put("output", ReportSections.ordered("name", "model.onnx", "bytes", result.best().size(),
          "sha256", result.best().sha256()));
    }
    Path reportFile = report.put("provenance", provenance).write(json, work);
    List<JobQueue.NewArtifact> artifacts = new ArrayList<>();
    if (result.best() != null) {
      // Stored the moment it was found; only the row is written now.
      artifacts.add(new JobQueue.NewArtifact("model.onnx", result.best().key(), "application/octet-stream",
          result.best().size(), result.best().sha256()));
    }
    artifacts.add(uploads.put(reportFile, "report.json", "application/json"));
    Map<?, ?> section = result.section();
    JobProgress done = new JobProgress().step(1).steps(1).stepType(SearchSpecs.TYPE)
        .item((Integer) section.get("trialsDone")).items((Integer) section.get("trialsPlanned"))
        .fraction(1.0).message((result.cancelled() ? "cancelled; kept: " : "finished: ") + section.get("message"))
        .updatedAt(clock.instant().atOffset(ZoneOffset.UTC));
    return new Outcome(result.summary(), json.writeValueAsString(done), artifacts, result.cancelled());
  }

  /** The artifact store failed to take a result: a reason the client can act on (retry later). */
  static final class StorageFailure extends RuntimeException {
    StorageFailure(String key, Exception cause) {
      super("the artifact store could not store '" + key + "' (" + describe(cause)
          + "); the job's result was discarded, submit it again once the store is available", cause);
    }

    private static String describe(Throwable e) {
      // The class name only: store messages carry server paths and bucket details.
      Throwable root = e instanceof UncheckedIOException u && u.getCause() != null ? u.getCause() : e;
      return "the store answered " + root.getClass().getSimpleName();
    }
  }

  private static ReportSummary summarize(PipelineResult result, FidelityReport fidelity, long bytesBefore,
      long bytesAfter, long parameters) {
    ReportSummary summary = JobReport.summary(result.steps(), bytesBefore, bytesAfter, parameters);
    if (fidelity != null) {
      FidelitySummaries.apply(fidelity, summary);
    }
    return summary;
  }

  private String progress(int step, int steps, String type, int item, int items, String message) {
    double within = items <= 0 ? 0 : Math.min(1.0, (double) item / items);
    double fraction = steps <= 0 ? 0 : Math.min(1.0, ((step - 1) + within) / steps);
    JobProgress p = new JobProgress()
        .step(step).steps(steps).stepType(type).item(item).items(items)
        .fraction(Math.round(fraction * 1000) / 1000.0)
        .message(message)
        .updatedAt(clock.instant().atOffset(ZoneOffset.UTC));
    return json.writeValueAsString(p);
  }

  private void fail(JobQueue.Claim claim, ApiProblem.Kind kind, String detail) {
    log.info("Job {} failed: {}", claim.jobId(), detail);
    queue.fail(claim, json.writeValueAsString(Problems.of(kind, detail, List.of())));
    deleteCheckpoints(claim.jobId());
  }

  private void deleteQuietly(List<String> keys) {
    for (String key : keys) {
      try {
        store.delete(key);
      } catch (RuntimeException e) {
        log.warn("Could not delete {}: {}", key, e.toString());
      }
    }
  }

  private static void deleteTree(Path dir) {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> {
        try {
          Files.deleteIfExists(p);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
    } catch (IOException | UncheckedIOException e) {
      log.warn("Could not clean {}: {}", dir, e.toString());
    }
  }
}
