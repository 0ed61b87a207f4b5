package dev.modelpress.worker;

import dev.modelpress.api.dto.JobStep;
import dev.modelpress.api.dto.ReportSummary;
import dev.modelpress.compression.StepReport;
import dev.modelpress.compression.TensorReport;
import dev.modelpress.dataset.DatasetEntity;
import dev.modelpress.job.JobEntity;
import dev.modelpress.model.ModelEntity;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.json.JsonMapper;

/**
 * The {@code report.json} of one job attempt, whichever path ran it (ONNX pipeline, external-data
 * model, search, safetensors checkpoint): every report opens with the same sections ({@code job},
 * {@code attempt}, {@code model}, {@code steps}, {@code summary}); each path then adds its own in
 * the order it puts them. The figures the paths share (summary, timings, input digests) are made
 * here once.
 */
final class JobReport {

  private final Map<String, Object> sections = new LinkedHashMap<>();

  /**
   * A report opening with the sections common to every job.
   *
   * @param format the model's format as the report names it, or {@code null} to leave it out
   */
  JobReport(JobEntity job, int attempt, ModelEntity model, String format, List<JobStep> steps,
      ReportSummary summary) {
    sections.put("job", job.getId());
    sections.put("attempt", attempt);
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("id", model.getId());
    m.put("name", model.getName());
    if (format != null) {
      m.put("format", format);
    }
    m.put("sha256", model.getSha256());
    m.put("bytes", model.getBytes());
    m.put("parameters", model.getParameterCount());
    sections.put("model", m);
    sections.put("steps", steps);
    sections.put("summary", summary);
  }

  /** Adds (or replaces) a section. */
  JobReport put(String name, Object value) {
    sections.put(name, value);
    return this;
  }

  /** Adds a section when there is one. */
  JobReport putIfPresent(String name, Object value) {
    if (value != null) {
      sections.put(name, value);
    }
    return this;
  }

  /** Adds several sections in the map's order. */
  JobReport putAll(Map<String, ?> more) {
    sections.putAll(more);
    return this;
  }

  /** Writes the report, pretty-printed, to {@code report.json} in {@code dir}; returns the file. */
  Path write(JsonMapper json, Path dir) throws IOException {
    Path file = dir.resolve("report.json");
    json.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), sections);
    return file;
  }

  /**
   * The summary of a compressed model: sizes, ratio, the original's parameter count and the sparsity
   * of the compressed tensors as they leave the last step that touched them.
   */
  static ReportSummary summary(List<StepReport> steps, long bytesBefore, long bytesAfter, long parameters) {
    ReportSummary summary = new ReportSummary()
        .bytesBefore(bytesBefore)
        .bytesAfter(bytesAfter)
        .compressionRatio(bytesAfter == 0 ? null : (double) bytesBefore / bytesAfter)
        .parameters(parameters);
    Double sparsity = sparsity(steps);
    if (sparsity != null) {
      summary.sparsity(sparsity);
    }
    return summary;
  }

  /**
   * Zeros over parameters of every tensor the steps changed, each as the last step that touched it
   * left it; {@code null} when no step changed a tensor.
   */
  static Double sparsity(List<StepReport> steps) {
    Map<String, TensorReport> last = new LinkedHashMap<>();
    steps.forEach(s -> s.tensors().forEach(t -> last.put(t.name(), t)));
    long params = 0;
    double zeros = 0;
    for (TensorReport t : last.values()) {
      params += t.parameters();
      zeros += t.sparsityAfter() * t.parameters();
    }
    return params == 0 ? null : zeros / params;
  }

  /** Seconds spent compressing and, when {@code evaluated} is given, evaluating. */
  static Map<String, Object> timings(Instant started, Instant compressed, Instant evaluated) {
    Map<String, Object> timings = new LinkedHashMap<>();
    timings.put("compressSeconds", seconds(started, compressed));
    if (evaluated != null) {
      timings.put("evaluateSeconds", seconds(compressed, evaluated));
    }
    return timings;
  }

  private static double seconds(Instant from, Instant to) {
    return Duration.between(from, to).toMillis() / 1000.0;
  }

  /** The provenance entry that pins a job's model: id, digest and size. */
  static Map<String, Object> input(ModelEntity model) {
    return ReportSections.ordered("id", model.getId(), "sha256", model.getSha256(), "bytes", model.getBytes());
  }

  /** The provenance entry that pins a job's dataset: id, digest and size. */
  static Map<String, Object> input(DatasetEntity dataset) {
    return ReportSections.ordered("id", dataset.getId(), "sha256", dataset.getSha256(), "bytes", dataset.getBytes());
  }
}
