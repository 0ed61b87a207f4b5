package dev.modelpress.worker;

import dev.modelpress.api.dto.ReportSummary;
import dev.modelpress.compression.PipelineResult;
import dev.modelpress.compression.SafetensorsPipeline;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.compression.TensorReport;
import dev.modelpress.format.FormatException;
import dev.modelpress.job.JobEntity;
import dev.modelpress.job.JobQueue;
import dev.modelpress.job.JobService;
import dev.modelpress.model.ModelEntity;
import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.storage.StoredObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import tools.jackson.databind.json.JsonMapper;

/**
 * Runs a job on a safetensors checkpoint: {@link SafetensorsPipeline} file to file (tensors one at a
 * time from the memory mapping, streamed into the output), then the artifacts {@code
 * model.safetensors}, {@code quantization_config.json} (when a step quantized: the {@code
 * quantization_config} to merge into the model's {@code config.json}, where Hugging Face loaders and
 * vLLM look for it) and {@code report.json} with per-tensor figures. There is no graph, so there is
 * no ONNX Runtime evaluation.
 */
final class SafetensorsJob {

  /** Formats a progress document, as {@code JobRunner} stores it. */
  @FunctionalInterface
  interface ProgressFormat {
    String format(int step, int steps, String type, int item, int items, String message);
  }

  /** What the job produced. */
  record Done(ReportSummary summary, List<JobQueue.NewArtifact> artifacts) {}

  private final ArtifactStore store;
  private final JsonMapper json;
  private final Clock clock;

  SafetensorsJob(ArtifactStore store, JsonMapper json, Clock clock) {
    this.store = store;
    this.json = json;
    this.clock = clock;
  }

  Done run(JobEntity job, JobExecution exec, JobService.StoredSpec spec, List<StepSpec> steps, ModelEntity model,
      Path original, Path work, List<String> storedKeys, ProgressFormat progress) throws IOException, FormatException {
    Instant started = clock.instant();
    String type = steps.stream().map(StepSpec::type).collect(Collectors.joining("+"));
    Path out = work.resolve("model.safetensors");
    exec.step(0, type);
    SafetensorsPipeline.Result result = SafetensorsPipeline.run(original, out, steps,
        (step, total, stepType, item, items, message) -> {
          exec.progress(progress.format(1, 1, type, item, items, message));
          exec.checkpoint();
        });
    exec.endStep();
    Instant compressed = clock.instant();

    long bytesBefore = Files.size(original);
    long bytesAfter = Files.size(out);
    ReportSummary summary = summary(result, bytesBefore, bytesAfter, model.getParameterCount());
    Map<String, Object> report = new LinkedHashMap<>();
    report.put("job", job.getId());
    report.put("attempt", exec.claim.attempt());
    report.put("model", ReportSections.ordered("id", model.getId(), "name", model.getName(), "format", "safetensors",
        "sha256", model.getSha256(), "bytes", model.getBytes(), "parameters", model.getParameterCount()));
    report.put("steps", spec.steps());
    report.put("summary", summary);
    List<ReportSections.Layer> layers = ReportSections.layers(new PipelineResult(null, result.steps()));
    // Quantization replaces a weight by codes + scales: the parameter count is unchanged.
    report.put("size", ReportSections.size(bytesBefore, bytesAfter, model.getParameterCount(),
        model.getParameterCount(), layers));
    report.put("layers", layers);
    report.put("stepReports", result.steps());
    if (result.quantizationConfig() != null) {
      report.put("quantizationConfig", json.readTree(result.quantizationConfig()));
    }
    report.put("timings", Map.of("compressSeconds", Duration.between(started, compressed).toMillis() / 1000.0));
    Map<String, Object> provenance = new LinkedHashMap<>(Provenance.describe());
    String specJson = json.writeValueAsString(spec);
    provenance.put("inputs", ReportSections.ordered(
        "model", ReportSections.ordered("id", model.getId(), "sha256", model.getSha256(), "bytes", model.getBytes()),
        "specSha256", Provenance.sha256(specJson), "spec", json.readTree(specJson)));
    provenance.put("reproduce", ReportSections.ordered("modelId", model.getId(), "steps", spec.steps()));
    provenance.put("output", ReportSections.ordered("name", "model.safetensors", "bytes", bytesAfter,
        "sha256", Provenance.sha256(out)));
    report.put("provenance", provenance);
    Path reportFile = work.resolve("report.json");
    json.writerWithDefaultPrettyPrinter().writeValue(reportFile.toFile(), report);

    String prefix = "jobs/" + job.getId() + "/attempt-" + exec.claim.attempt() + "/";
    List<JobQueue.NewArtifact> artifacts = new ArrayList<>();
    artifacts.add(put(prefix, out, "model.safetensors", "application/octet-stream", storedKeys));
    if (result.quantizationConfig() != null) {
      Path config = work.resolve("quantization_config.json");
      json.writerWithDefaultPrettyPrinter().writeValue(config.toFile(),
          Map.of("quantization_config", json.readTree(result.quantizationConfig())));
      artifacts.add(put(prefix, config, "quantization_config.json", "application/json", storedKeys));
    }
    artifacts.add(put(prefix, reportFile, "report.json", "application/json", storedKeys));
    return new Done(summary, artifacts);
  }

  private static ReportSummary summary(SafetensorsPipeline.Result result, long bytesBefore, long bytesAfter,
      long parameters) {
    ReportSummary summary = new ReportSummary()
        .bytesBefore(bytesBefore)
        .bytesAfter(bytesAfter)
        .compressionRatio(bytesAfter == 0 ? null : (double) bytesBefore / bytesAfter)
        .parameters(parameters);
    Map<String, TensorReport> last = new LinkedHashMap<>();
    result.steps().forEach(s -> s.tensors().forEach(t -> last.put(t.name(), t)));
    long params = 0;
    double zeros = 0;
    for (TensorReport t : last.values()) {
      params += t.parameters();
      zeros += t.sparsityAfter() * t.parameters();
    }
    if (params > 0) {
      summary.sparsity(zeros / params);
    }
    return summary;
  }

  private JobQueue.NewArtifact put(String prefix, Path file, String name, String contentType, List<String> storedKeys)
      throws IOException {
    String key = prefix + name;
    storedKeys.add(key);
    StoredObject stored;
    try {
      stored = store.put(key, file);
    } catch (IOException | UncheckedIOException e) {
      throw new JobRunner.StorageFailure(key, e);
    }
    return new JobQueue.NewArtifact(name, key, contentType, stored.size(), stored.sha256());
  }
}
