package dev.modelpress.worker;

import dev.modelpress.compression.DeepCompressionArchive;
import dev.modelpress.compression.PruneSpec;
import dev.modelpress.compression.ShareSpec;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.evaluation.FidelityReport;
import dev.modelpress.evaluation.LatencyProbe;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.ValueInfo;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

/**
 * The extra artifacts and report sections of jobs that prune or share weights, kept out of
 * {@link JobRunner}'s main line:
 *
 * <ul>
 *   <li>{@code model.dc}, the Deep Compression archive, when a share step ran; {@code model.onnx}
 *       is then the model decoded from that archive, so what is evaluated and downloaded is exactly
 *       what the archive holds;
 *   <li>{@code model.onnx.gz}, gzip of {@code model.onnx}, when a prune or share step ran: the
 *       storage form that reflects sparsity (docs/pruning.md has the measurements behind choosing
 *       it over ONNX sparse initializers);
 *   <li>a latency section for structured pruning, from the evaluation run when there was one, else
 *       from a run on a synthetic batch.
 * </ul>
 */
final class PruningOutputs {

  /** Latency runs when there is no evaluation dataset: the issue asks for at least 50. */
  static final int WARMUP_RUNS = 10;
  static final int LATENCY_RUNS = 50;

  /** An artifact file and how it is served. */
  record Extra(String name, Path file, String contentType) {}

  private final List<StepSpec> steps;
  private final Path work;
  private final Map<String, Object> sections = new LinkedHashMap<>();
  private final List<Extra> extras = new ArrayList<>();

  PruningOutputs(List<StepSpec> steps, Path work) {
    this.steps = steps;
    this.work = work;
  }

  private boolean any(Class<?> type) {
    return steps.stream().anyMatch(type::isInstance);
  }

  private boolean structured() {
    // Correlation pruning shrinks layers too: its report gets the latency figures as well.
    return steps.stream().anyMatch(s -> s instanceof PruneSpec p
        && (p.method().equals(PruneSpec.STRUCTURED) || p.method().equals(PruneSpec.CORRELATION)));
  }

  /**
   * Writes the archive when a share step ran and replaces {@code modelFile} with the model decoded
   * from it.
   */
  void afterCompression(ModelProto model, Path modelFile) throws IOException, FormatException {
    if (!any(ShareSpec.class)) {
      return;
    }
    Path archive = work.resolve("model.dc");
    DeepCompressionArchive.Stats stats;
    try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(archive))) {
      stats = DeepCompressionArchive.write(model, out);
    }
    ModelProto decoded;
    try (InputStream in = new BufferedInputStream(Files.newInputStream(archive))) {
      decoded = DeepCompressionArchive.decode(in);
    }
    OnnxModels.write(decoded, modelFile);
    Map<String, Object> dc = new LinkedHashMap<>();
    dc.put("archiveBytes", Files.size(archive));
    dc.put("tensorsCoded", stats.tensors());
    dc.put("parametersCoded", stats.parameters());
    dc.put("nonZeros", stats.nonZeros());
    dc.put("stageBytes", Map.of("dense", stats.denseBytes(), "pruned", stats.prunedBytes(),
        "shared", stats.sharedBytes(), "coded", stats.codedBytes(), "rest", stats.otherBytes()));
    dc.put("stageRatios", Map.of("prune", stats.pruneRatio(), "share", stats.shareRatio(), "code", stats.codeRatio()));
    sections.put("deepCompression", dc);
    extras.add(new Extra("model.dc", archive, "application/octet-stream"));
  }

  /** Writes the gzip container and measures latency; call after the evaluation (if any). */
  void afterEvaluation(Path originalFile, Path modelFile, FidelityReport fidelity, int threads, List<ValueInfo> inputs)
      throws IOException {
    if (any(PruneSpec.class) || any(ShareSpec.class)) {
      Path gz = work.resolve("model.onnx.gz");
      try (OutputStream out = new GZIPOutputStream(new BufferedOutputStream(Files.newOutputStream(gz)), 1 << 16)) {
        Files.copy(modelFile, out);
      }
      long onnx = Files.size(modelFile);
      long gzBytes = Files.size(gz);
      sections.put("storage", Map.of("onnxBytes", onnx, "gzipBytes", gzBytes,
          "originalBytes", Files.size(originalFile), "gzipRatioToOriginal", (double) Files.size(originalFile) / gzBytes));
      extras.add(new Extra("model.onnx.gz", gz, "application/gzip"));
    }
    if (structured()) {
      Map<String, Object> latency = new LinkedHashMap<>();
      try {
        FidelityReport timed = fidelity != null && fidelity.original() != null ? fidelity
            : LatencyProbe.compare(originalFile, modelFile, inputs, threads, WARMUP_RUNS, LATENCY_RUNS);
        latency.put("source", timed == fidelity ? "evaluation dataset" : "synthetic batch");
        latency.put("intraOpThreads", timed.intraOpThreads());
        latency.put("original", timed.original());
        latency.put("candidate", timed.candidate());
        latency.put("speedup", timed.speedup());
      } catch (EvaluationException e) {
        latency.put("error", e.getMessage());
      }
      sections.put("latency", latency);
    }
  }

  /** Report sections to add to report.json. */
  Map<String, Object> sections() {
    return sections;
  }

  /** Extra artifact files to store. */
  List<Extra> extras() {
    return extras;
  }
}
