package dev.modelpress.worker;

import dev.modelpress.api.dto.JobProgress;
import dev.modelpress.api.dto.JobStep;
import dev.modelpress.api.dto.ReportSummary;
import dev.modelpress.compression.CompressionCancelledException;
import dev.modelpress.compression.CompressionException;
import dev.modelpress.compression.OnnxPipeline;
import dev.modelpress.compression.PipelineResult;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.evaluation.EvaluationOptions;
import dev.modelpress.evaluation.FidelityEvaluator;
import dev.modelpress.evaluation.FidelityReport;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.job.JobQueue;
import dev.modelpress.job.JobSpecs;
import dev.modelpress.job.SearchSpecs;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.storage.StoredObject;
import dev.modelpress.system.ApiProblem;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import tools.jackson.databind.json.JsonMapper;

/**
 * Runs a {@code search} job: a per-tensor sensitivity analysis prunes and orders the space, then
 * candidates are compressed and measured one at a time until the trial or time budget is spent.
 * The best feasible candidate is stored under the attempt's {@code model.onnx} key the moment it
 * is found (replaced when a better one appears); artifact rows are recorded when the job ends,
 * succeeded or cancelled. See docs/search.md.
 */
final class SearchRunner {

  /** Samples the sensitivity probes are measured on (a fraction of the evaluation set, for speed). */
  static final int PROBE_SAMPLES = 128;
  /** Share of the time budget the sensitivity analysis may use before the trials start. */
  static final double PROBE_TIME_SHARE = 1.0 / 3;

  /** One measured (or failed) candidate. */
  record Trial(int recipe, List<JobStep> steps, List<String> exclusions, long bytes, Double latencyP50Millis,
      Double metric, boolean feasible, String error, Map<String, Object> fidelity) {}

  /** What one tensor does to the metric when a step compresses it alone. */
  record Sensitivity(String step, String tensor, Double metric, boolean breaksConstraint, long bytesDelta,
      @com.fasterxml.jackson.annotation.JsonIgnore boolean applies) {}

  /** The search's outcome: what to record and whether it ended by a cancel. */
  record Result(ReportSummary summary, Map<String, Object> section, Path bestFile, StoredObject best,
      boolean cancelled) {}

  private final ArtifactStore store;
  private final JsonMapper json;
  private final Clock clock;
  private final int threads;

  SearchRunner(ArtifactStore store, JsonMapper json, Clock clock, int threads) {
    this.store = store;
    this.json = json;
    this.clock = clock;
    this.threads = threads;
  }

  Result run(SearchSpecs.Search search, JobExecution exec, Path work, Path originalFile, ModelProto original,
      List<NdArray> data, int evaluationSamples, String bestKey, List<String> storedKeys)
      throws IOException, EvaluationException {
    Instant start = clock.instant();
    long deadline = start.toEpochMilli() + search.seconds() * 1000L;
    long probeDeadline = start.toEpochMilli() + (long) (search.seconds() * 1000L * PROBE_TIME_SHARE);
    long originalBytes = Files.size(originalFile);
    List<Trial> trials = new ArrayList<>();
    List<Sensitivity> sensitivities = new ArrayList<>();
    List<Map<String, Object>> skipped = new ArrayList<>();
    Trial best = null;
    StoredObject bestStored = null;
    Path bestFile = work.resolve("best.onnx");
    boolean cancelled = false;
    String stoppedBy = "space";
    int planned = Math.min(search.trials(), search.space().size());

    try (FidelityEvaluator evaluator = new FidelityEvaluator(threads)) {
      try {
        // 1. Sensitivity: every distinct step of the space, applied to one tensor at a time.
        Map<String, JobStep> distinct = new LinkedHashMap<>();
        for (List<JobStep> recipe : search.space()) {
          for (JobStep s : recipe) {
            distinct.putIfAbsent(key(s), s);
          }
        }
        Map<String, Set<String>> touched = new HashMap<>();
        Map<String, Set<String>> sensitive = new HashMap<>();
        Map<String, Long> deltas = new HashMap<>();
        int probed = 0;
        for (Map.Entry<String, JobStep> e : distinct.entrySet()) {
          exec.checkpoint();
          Set<String> tensors = touchedTensors(original, e.getValue());
          touched.put(e.getKey(), tensors);
          sensitive.put(e.getKey(), new LinkedHashSet<>());
          for (String tensor : List.copyOf(tensors)) {
            if (clock.millis() >= probeDeadline) {
              break; // unprobed tensors count as harmless: the trials still measure them
            }
            exec.checkpoint();
            exec.progress(progress(0, planned, "sensitivity: " + e.getValue().getType() + " on " + tensor, null));
            Sensitivity s = probe(evaluator, search, e.getKey(), e.getValue(), tensor, original, originalFile,
                originalBytes, data, work.resolve("probe-" + probed++ + ".onnx"));
            if (!s.applies()) {
              // The step cannot take this tensor alone: it is touched only as a consequence of
              // another (a structured prune shrinking the next layer's input), so it is neither
              // probed nor ever excluded.
              tensors.remove(tensor);
              continue;
            }
            sensitivities.add(s);
            deltas.merge(e.getKey(), s.bytesDelta(), Long::sum);
            if (s.breaksConstraint()) {
              sensitive.get(e.getKey()).add(tensor);
            }
          }
        }

        // 2. Candidates: sensitive tensors become exclusions; order by the size the probes predict.
        record Candidate(int recipe, List<JobStep> steps, List<String> exclusions, long estimatedBytes,
            String deferred) {}
        List<Candidate> candidates = new ArrayList<>();
        for (int r = 0; r < search.space().size(); r++) {
          List<JobStep> recipe = search.space().get(r);
          List<JobStep> steps = new ArrayList<>();
          List<String> exclusions = new ArrayList<>();
          long estimate = originalBytes;
          String skip = null;
          for (JobStep s : recipe) {
            String k = key(s);
            Set<String> bad = sensitive.getOrDefault(k, Set.of());
            Set<String> all = touched.getOrDefault(k, Set.of());
            if (!all.isEmpty() && bad.containsAll(all)) {
              skip = "every tensor the " + s.getType() + " step touches breaks the constraint on its own: "
                  + String.join(", ", bad);
              break;
            }
            estimate += deltas.getOrDefault(k, 0L);
            steps.add(bad.isEmpty() ? s : withExclusions(s, bad));
            exclusions.addAll(bad);
          }
          if (skip != null) {
            // Kept, but last: measured only while nothing feasible is found, so a search where
            // everything breaks the constraint still reports its closest candidates.
            candidates.add(new Candidate(r, recipe, List.of(), estimate, skip));
          } else {
            candidates.add(new Candidate(r, steps, exclusions, estimate, null));
          }
        }
        candidates.sort(Comparator.comparing((Candidate c) -> c.deferred() != null)
            .thenComparingLong(Candidate::estimatedBytes).thenComparingInt(Candidate::recipe));
        planned = Math.min(search.trials(), candidates.size());

        // 3. Trials.
        for (Candidate c : candidates) {
          if (trials.size() >= search.trials()) {
            stoppedBy = "trials";
            break;
          }
          if (clock.millis() >= deadline) {
            stoppedBy = "time";
            break;
          }
          if (c.deferred() != null && best != null) {
            skipped.add(ReportSections.ordered("recipe", c.recipe(), "steps", c.steps(), "reason", c.deferred()));
            continue;
          }
          exec.checkpoint();
          exec.progress(progress(trials.size(), planned, "trial " + (trials.size() + 1) + " of " + planned
              + ": recipe " + c.recipe(), best));
          Path file = work.resolve("candidate-" + trials.size() + ".onnx");
          Trial t = measure(evaluator, search, c.recipe(), c.steps(), c.exclusions(), original, originalFile, file,
              data, evaluationSamples, exec);
          trials.add(t);
          if (t.feasible() && (best == null || better(search, t, best))) {
            best = t;
            Files.move(file, bestFile, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            if (!storedKeys.contains(bestKey)) {
              storedKeys.add(bestKey);
            }
            bestStored = store.put(bestKey, bestFile);
          } else {
            Files.deleteIfExists(file);
          }
          exec.progress(progress(trials.size(), planned, "trial " + trials.size() + " of " + planned + " done", best));
        }
        if ("space".equals(stoppedBy) && trials.size() >= search.trials() && candidates.size() > trials.size()) {
          stoppedBy = "trials";
        }
      } catch (CompressionCancelledException e) {
        if (exec.stopReason() != JobExecution.StopReason.CANCELLED) {
          throw e;
        }
        cancelled = true;
        stoppedBy = "cancelled";
      }
    }

    // 4. The Pareto front over measured candidates: smaller, faster and closer to the original.
    List<Trial> measured = trials.stream().filter(t -> t.error() == null).toList();
    List<Integer> front = new ArrayList<>();
    for (int i = 0; i < trials.size(); i++) {
      Trial t = trials.get(i);
      if (t.error() == null && measured.stream().noneMatch(o -> dominates(search, o, t))) {
        front.add(i);
      }
    }
    Trial chosen = best;
    List<Trial> closest = best != null ? List.of() : measured.stream()
        .sorted(Comparator.comparingDouble((Trial t) -> search.shortfall(t.metric())).thenComparingLong(Trial::bytes))
        .limit(3).toList();

    Map<String, Object> section = new LinkedHashMap<>();
    section.put("objective", search.objective());
    section.put("constraint", ReportSections.ordered("metric", search.metric(), search.atMost() ? "max" : "min",
        search.bound()));
    section.put("budget", ReportSections.ordered("trials", search.trials(), "seconds", search.seconds()));
    section.put("feasible", best != null);
    section.put("message", best != null
        ? "best feasible candidate: recipe " + best.recipe() + ", " + best.bytes() + " bytes"
        : "no candidate met the constraint " + search.metric() + (search.atMost() ? " <= " : " >= ") + search.bound()
            + "; the closest candidates are listed with their numbers");
    section.put("stoppedBy", stoppedBy);
    section.put("seconds", (clock.millis() - start.toEpochMilli()) / 1000.0);
    section.put("originalBytes", originalBytes);
    section.put("trialsPlanned", planned);
    section.put("trialsDone", trials.size());
    section.put("sensitivity", sensitivities);
    section.put("skipped", skipped);
    section.put("trials", trials);
    section.put("pareto", front);
    section.put("best", chosen);
    section.put("closest", closest);

    ReportSummary summary = new ReportSummary().bytesBefore(originalBytes)
        .bytesAfter(best == null ? null : best.bytes())
        .compressionRatio(best == null ? null : (double) originalBytes / best.bytes());
    return new Result(summary, section, best == null ? null : bestFile, bestStored, cancelled);
  }

  private Sensitivity probe(FidelityEvaluator evaluator, SearchSpecs.Search search, String key, JobStep step,
      String tensor, ModelProto original, Path originalFile, long originalBytes, List<NdArray> data, Path file)
      throws IOException, EvaluationException {
    JobStep only = json.convertValue(json.valueToTree(step), JobStep.class);
    only.setInclude(List.of(Pattern.quote(tensor)));
    only.setExclude(null);
    try {
      PipelineResult result = OnnxPipeline.run(original, JobSpecs.toSpecs(List.of(only)), dev.modelpress.compression.Progress.NONE);
      OnnxModels.write(result.model(), file);
      FidelityReport f = evaluator.compare(originalFile, file, data,
          EvaluationOptions.defaults().withMaxSamples(PROBE_SAMPLES).withLatencyRuns(0, 0));
      Double metric = metric(search, f);
      boolean breaks = !search.meets(widen(search, metric, f.samples()));
      long delta = Files.size(file) - originalBytes;
      return new Sensitivity(key, tensor, metric, breaks, delta, true);
    } catch (CompressionException | ApiProblem e) {
      return new Sensitivity(key, tensor, null, false, 0, false);
    } finally {
      Files.deleteIfExists(file);
    }
  }

  /**
   * The probe's metric moved by two standard errors in the candidate's favour: the probe sees
   * only {@link #PROBE_SAMPLES} samples, and a tensor is excluded only when it clearly breaks the
   * constraint on its own.
   */
  private static Double widen(SearchSpecs.Search search, Double metric, int samples) {
    if (metric == null || metric.isNaN() || !"accuracyDrop".equals(search.metric()) && !"top1Agreement".equals(search.metric())) {
      return metric;
    }
    double se = Math.sqrt(0.25 / Math.max(1, samples));
    return "accuracyDrop".equals(search.metric()) ? metric - 2 * se * 100 : metric + 2 * se;
  }

  private Trial measure(FidelityEvaluator evaluator, SearchSpecs.Search search, int recipe, List<JobStep> steps,
      List<String> exclusions, ModelProto original, Path originalFile, Path file, List<NdArray> data, int samples,
      JobExecution exec) throws IOException, EvaluationException {
    try {
      List<StepSpec> specs = JobSpecs.toSpecs(steps);
      PipelineResult result = OnnxPipeline.run(original, specs, (step, total, type, item, items, message) ->
          exec.checkpoint());
      OnnxModels.write(result.model(), file);
      exec.checkpoint();
      FidelityReport f = evaluator.compare(originalFile, file, data,
          EvaluationOptions.defaults().withMaxSamples(samples).withLatencyRuns(3, 20));
      Double metric = metric(search, f);
      ReportSummary s = new ReportSummary();
      FidelitySummaries.apply(f, s);
      Map<String, Object> fidelity = ReportSections.ordered("samples", f.samples(),
          "accuracyBefore", s.getAccuracyBefore(), "accuracyAfter", s.getAccuracyAfter(),
          "top1Agreement", s.getTop1Agreement(), "meanCosine", s.getMeanCosine(), "maxAbsError", s.getMaxAbsError(),
          "originalP50Millis", f.original() == null ? null : f.original().p50Millis(),
          "sparsity", JobReport.sparsity(result.steps()));
      return new Trial(recipe, steps, exclusions, Files.size(file), f.candidate() == null ? null : f.candidate().p50Millis(),
          metric, search.meets(metric), null, fidelity);
    } catch (CompressionException | ApiProblem e) {
      // One recipe the model cannot take (structured pruning refused by the graph, say) is a
      // failed trial, not a failed search.
      Files.deleteIfExists(file);
      return new Trial(recipe, steps, exclusions, 0, null, null, false, e.getMessage(), Map.of());
    }
  }

  /** The constrained metric: accuracy drop in percentage points, cosine or top-1 agreement. */
  static Double metric(SearchSpecs.Search search, FidelityReport f) {
    ReportSummary s = new ReportSummary();
    FidelitySummaries.apply(f, s);
    return switch (search.metric()) {
      case "accuracyDrop" -> s.getAccuracyBefore() == null || s.getAccuracyAfter() == null ? null
          : (s.getAccuracyBefore() - s.getAccuracyAfter()) * 100;
      case "cosine" -> s.getMeanCosine();
      default -> s.getTop1Agreement();
    };
  }

  private Set<String> touchedTensors(ModelProto original, JobStep step) {
    Set<String> names = new LinkedHashSet<>();
    try {
      PipelineResult r = OnnxPipeline.run(original, JobSpecs.toSpecs(List.of(step)), dev.modelpress.compression.Progress.NONE);
      r.steps().forEach(s -> s.tensors().forEach(t -> names.add(t.name())));
    } catch (CompressionException | ApiProblem e) {
      // A step that cannot run alone is measured as part of its recipes only.
    }
    return names;
  }

  private JobStep withExclusions(JobStep step, Set<String> tensors) {
    JobStep copy = json.convertValue(json.valueToTree(step), JobStep.class);
    List<String> exclude = new ArrayList<>(copy.getExclude() == null ? List.of() : copy.getExclude());
    tensors.forEach(t -> exclude.add(Pattern.quote(t)));
    copy.setExclude(exclude);
    return copy;
  }

  private String key(JobStep step) {
    return json.writeValueAsString(step);
  }

  private static double objective(SearchSpecs.Search search, Trial t) {
    return "latency".equals(search.objective())
        ? (t.latencyP50Millis() == null ? Double.POSITIVE_INFINITY : t.latencyP50Millis()) : t.bytes();
  }

  /** Lower objective wins; on a tie, the candidate further inside the constraint. */
  private static boolean better(SearchSpecs.Search search, Trial a, Trial b) {
    int c = Double.compare(objective(search, a), objective(search, b));
    return c < 0 || c == 0 && search.shortfall(a.metric()) == 0 && closer(search, a.metric(), b.metric());
  }

  private static boolean closer(SearchSpecs.Search search, Double a, Double b) {
    return a != null && b != null && (search.atMost() ? a < b : a > b);
  }

  /** Whether {@code a} is at least as good as {@code b} in size, latency and metric, and better in one. */
  static boolean dominates(SearchSpecs.Search search, Trial a, Trial b) {
    if (a == b || a.metric() == null || b.metric() == null) {
      return false;
    }
    double la = a.latencyP50Millis() == null ? Double.POSITIVE_INFINITY : a.latencyP50Millis();
    double lb = b.latencyP50Millis() == null ? Double.POSITIVE_INFINITY : b.latencyP50Millis();
    // Metric oriented so that larger is better.
    double ma = search.atMost() ? -a.metric() : a.metric();
    double mb = search.atMost() ? -b.metric() : b.metric();
    boolean noWorse = a.bytes() <= b.bytes() && la <= lb && ma >= mb;
    boolean better = a.bytes() < b.bytes() || la < lb || ma > mb;
    return noWorse && better;
  }

  private String progress(int done, int planned, String message, Trial best) {
    JobProgress p = new JobProgress()
        .step(1).steps(1).stepType(SearchSpecs.TYPE).item(done).items(planned)
        .fraction(planned == 0 ? 0 : Math.round(Math.min(1.0, (double) done / planned) * 1000) / 1000.0)
        .message(message + (best == null ? "; no feasible candidate yet"
            : "; best so far: recipe " + best.recipe() + ", " + best.bytes() + " bytes, " + best.metric()))
        .updatedAt(clock.instant().atOffset(ZoneOffset.UTC));
    return json.writeValueAsString(p);
  }
}
