package dev.modelpress.worker;

import dev.modelpress.api.dto.ReportSummary;
import dev.modelpress.compression.PipelineResult;
import dev.modelpress.compression.SafetensorsPipeline;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.archive.ArchiveReader;
import dev.modelpress.format.safetensors.SafetensorsShards;
import dev.modelpress.job.JobEntity;
import dev.modelpress.job.JobQueue;
import dev.modelpress.job.JobService;
import dev.modelpress.model.ModelEntity;
import dev.modelpress.storage.ArtifactStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * Runs a job on a safetensors checkpoint: {@link SafetensorsPipeline} file to file (tensors one at a
 * time from the memory mapping, streamed into the output), then the artifacts {@code
 * model.safetensors} (or, for a sharded checkpoint uploaded as an archive, one output shard per input
 * shard under the same names, a new {@code model.safetensors.index.json}, and the archive's {@code
 * config.json} with the {@code quantization_config} merged in), {@code quantization_config.json} (when a step quantized: the {@code
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
    Path outDir = Files.createDirectories(work.resolve("out"));
    // A .zip/.tar model is a sharded checkpoint: validated again as it is extracted, then shard by shard.
    SafetensorsShards.Checkpoint sharded = ArchiveReader.detect(original) == null ? null
        : SafetensorsShards.extract(original, work.resolve("in"), SafetensorsShards.DEFAULT_LIMITS);
    List<Path> inputs = sharded == null ? List.of(original) : sharded.shards();
    List<Path> outputs = sharded == null ? List.of(outDir.resolve("model.safetensors"))
        : inputs.stream().map(p -> outDir.resolve(p.getFileName().toString())).toList();
    exec.step(0, type);
    SafetensorsPipeline.Result result = SafetensorsPipeline.run(inputs, outputs, steps,
        (step, total, stepType, item, items, message) -> {
          exec.progress(progress.format(1, 1, type, item, items, message));
          exec.checkpoint();
        });
    exec.endStep();
    Instant compressed = clock.instant();
    List<Path> extra = new ArrayList<>();
    if (sharded != null) {
      Map<String, String> weightMap = new LinkedHashMap<>();
      long total = 0;
      for (SafetensorsPipeline.Output o : result.outputs()) {
        o.tensors().forEach(t -> weightMap.put(t, o.file().getFileName().toString()));
        total += o.dataBytes();
      }
      Path index = outDir.resolve(SafetensorsShards.INDEX);
      SafetensorsShards.writeIndex(index, weightMap, total);
      extra.add(index);
      if (sharded.config() != null) {
        // The checkpoint's own config.json, with the quantization_config loaders look for merged in.
        JsonNode config = json.readTree(sharded.config().toFile());
        if (config instanceof ObjectNode object && result.quantizationConfig() != null) {
          object.set("quantization_config", json.readTree(result.quantizationConfig()));
        }
        Path merged = outDir.resolve("config.json");
        json.writerWithDefaultPrettyPrinter().writeValue(merged.toFile(), config);
        extra.add(merged);
      }
    }
    Path out = outputs.getFirst();
    long bytesBefore = 0;
    for (Path p : inputs) {
      bytesBefore += Files.size(p);
    }
    long bytesAfter = 0;
    for (Path p : outputs) {
      bytesAfter += Files.size(p);
    }
    ReportSummary summary = JobReport.summary(result.steps(), bytesBefore, bytesAfter, model.getParameterCount());
    JobReport report = new JobReport(job, exec.claim.attempt(), model, "safetensors", spec.steps(), summary);
    List<ReportSections.Layer> layers = ReportSections.layers(new PipelineResult(null, result.steps()));
    // Quantization replaces a weight by codes + scales: the parameter count is unchanged.
    report.put("size", ReportSections.size(bytesBefore, bytesAfter, model.getParameterCount(),
        model.getParameterCount(), layers));
    report.put("layers", layers);
    report.put("stepReports", result.steps());
    if (result.quantizationConfig() != null) {
      report.put("quantizationConfig", json.readTree(result.quantizationConfig()));
    }
    report.put("timings", JobReport.timings(started, compressed, null));
    Map<String, Object> provenance = new LinkedHashMap<>(Provenance.describe());
    String specJson = json.writeValueAsString(spec);
    provenance.put("inputs", ReportSections.ordered("model", JobReport.input(model),
        "specSha256", Provenance.sha256(specJson), "spec", json.readTree(specJson)));
    provenance.put("reproduce", ReportSections.ordered("modelId", model.getId(), "steps", spec.steps()));
    if (sharded == null) {
      provenance.put("output", ReportSections.ordered("name", "model.safetensors", "bytes", bytesAfter,
          "sha256", Provenance.sha256(out)));
    } else {
      List<Object> files = new ArrayList<>();
      for (Path p : outputs) {
        files.add(ReportSections.ordered("name", p.getFileName().toString(), "bytes", Files.size(p),
            "sha256", Provenance.sha256(p)));
      }
      provenance.put("outputs", files);
    }
    report.put("provenance", provenance);
    Path reportFile = report.write(json, work);

    AttemptArtifacts uploads = new AttemptArtifacts(store, job, exec.claim.attempt(), storedKeys);
    List<JobQueue.NewArtifact> artifacts = new ArrayList<>();
    for (Path p : outputs) {
      artifacts.add(uploads.put(p, p.getFileName().toString(), "application/octet-stream"));
    }
    for (Path p : extra) {
      artifacts.add(uploads.put(p, p.getFileName().toString(), "application/json"));
    }
    if (result.quantizationConfig() != null) {
      Path config = work.resolve("quantization_config.json");
      json.writerWithDefaultPrettyPrinter().writeValue(config.toFile(),
          Map.of("quantization_config", json.readTree(result.quantizationConfig())));
      artifacts.add(uploads.put(config, "quantization_config.json", "application/json"));
    }
    artifacts.add(uploads.put(reportFile, "report.json", "application/json"));
    return new Done(summary, artifacts);
  }
}
