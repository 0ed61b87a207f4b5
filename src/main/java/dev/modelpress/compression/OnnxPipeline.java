package dev.modelpress.compression;

import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Applies prune and quantize steps, in order, to the initializers of an ONNX model's main graph.
 *
 * <p>The input model is never changed (protobuf messages are immutable; each step builds a new
 * one), so a failed or cancelled run leaves nothing half-done. Work is one tensor at a time: a
 * tensor is decoded to {@code float[]}, transformed and encoded again before the next one is
 * touched; {@link Progress} is called between tensors and may cancel.
 */
public final class OnnxPipeline {

  private OnnxPipeline() {}

  /**
   * Runs the steps.
   *
   * @throws CompressionException if a step selects nothing, meets an unsupported tensor type, or a
   *     selected tensor holds NaN or infinity
   * @throws CompressionCancelledException if {@code progress} cancels
   */
  public static PipelineResult run(ModelProto model, List<StepSpec> steps, Progress progress) {
    return run(model, steps, null, progress);
  }

  /**
   * Runs the steps with calibration data and a scratch directory for the steps that run the model
   * ({@link CalibratedQuantizeSpec}); {@code context} may be {@code null} when no step needs it.
   *
   * @throws CompressionException also when a data-aware step has no calibration data
   */
  public static PipelineResult run(ModelProto model, List<StepSpec> steps, PipelineContext context, Progress progress) {
    ModelProto current = model;
    List<StepReport> reports = new ArrayList<>();
    for (int i = 0; i < steps.size(); i++) {
      StepSpec step = steps.get(i);
      List<TensorInfo> selected = select(current, step, i);
      StepRun run = new StepRun(i, steps.size(), step.type(), progress);
      StepReport report = switch (step) {
        case PruneSpec p when p.method().equals(PruneSpec.NM) -> {
          GraphProto.Builder g = current.getGraph().toBuilder();
          List<TensorReport> tensors = PruningSteps.nm(g, selected, p, run::at);
          current = current.toBuilder().setGraph(g).build();
          yield new StepReport(i, step.type(), PruningSteps.nmSummary(p, tensors), tensors,
              java.util.Map.of("n", p.n(), "m", p.m()));
        }
        case PruneSpec p when p.method().equals(PruneSpec.STRUCTURED) -> {
          PruningSteps.Structured s = PruningSteps.structured(current, selected, p, context, run::at);
          current = s.model();
          yield new StepReport(i, step.type(), s.summary(), s.tensors(), s.details());
        }
        case PruneSpec p when p.method().equals(PruneSpec.CORRELATION) -> {
          PruningSteps.Structured s = RedundancyPruner.apply(current, selected, p, context, run::at);
          current = s.model();
          yield new StepReport(i, step.type(), s.summary(), s.tensors(), s.details());
        }
        case ShareSpec sh -> {
          GraphProto.Builder g = current.getGraph().toBuilder();
          PruningSteps.Shared s = PruningSteps.share(g, selected, sh, run::at);
          current = current.toBuilder().setGraph(g).build();
          yield new StepReport(i, step.type(), s.summary(), s.tensors(), s.details());
        }
        case PruneSpec p when p.method().equals(PruneSpec.WANDA) || p.method().equals(PruneSpec.SPARSEGPT) -> {
          ActivationPruning.Outcome o = ActivationPruning.apply(current, selected, p, context, run::at);
          current = o.model();
          yield new StepReport(i, step.type(), ActivationPruning.summary(p, o), o.tensors());
        }
        case PruneSpec p -> {
          GraphProto.Builder g = current.getGraph().toBuilder();
          List<TensorReport> tensors = prune(g, selected, p, run);
          current = current.toBuilder().setGraph(g).build();
          yield new StepReport(i, step.type(), pruneSummary(p, tensors), tensors);
        }
        case QuantizeSpec q -> {
          List<TensorReport> tensors = new ArrayList<>();
          current = quantize(current, selected, q, run, tensors);
          yield new StepReport(i, step.type(), quantizeSummary(q, tensors), tensors);
        }
        case TrainSpec t -> {
          TrainingRunner runner = context == null ? TrainingRunner.NONE : context.training();
          TrainingRunner.Outcome o = runner.run(current, t, i, run::at);
          current = o.model();
          yield o.report();
        }
        case CalibratedQuantizeSpec c -> {
          CalibratedQuantization.Outcome o = CalibratedQuantization.apply(current, selected, c, context,
              (item, items, message) -> run.at(item, items, message));
          current = o.model();
          yield new StepReport(i, step.type(), o.summary(), o.tensors(), o.report());
        }
      };
      reports.add(report);
    }
    return new PipelineResult(current, reports);
  }

  /** Progress for one step, counting items. */
  private record StepRun(int index, int steps, String type, Progress progress) {
    void at(int item, int items, String message) {
      progress.update(index, steps, type, item, items, message);
    }
  }

  private static List<TensorInfo> select(ModelProto model, StepSpec step, int index) {
    List<TensorInfo> tensors = TensorSelector.reachable(step, OnnxModels.weights(model));
    List<TensorInfo> selected = TensorSelector.selectFor(step, model.getGraph(), tensors);
    if (selected.isEmpty()) {
      throw new CompressionException("step " + index + " (" + step.type() + ") selects no tensor"
          + (step instanceof PruneSpec && step.include().isEmpty() ? PruningSteps.PROTECTED_HINT : ""));
    }
    for (TensorInfo t : selected) {
      String why = TensorSelector.unsupportedType(step, t);
      if (why != null) {
        throw new CompressionException("step " + index + ": " + why);
      }
    }
    return selected;
  }

  private static Map<String, Integer> initializerIndex(GraphProto.Builder g) {
    Map<String, Integer> index = new HashMap<>();
    for (int i = 0; i < g.getInitializerCount(); i++) {
      index.put(g.getInitializer(i).getName(), i);
    }
    return index;
  }

  // ---- pruning ----------------------------------------------------------------------------

  private static List<TensorReport> prune(GraphProto.Builder g, List<TensorInfo> selected, PruneSpec spec, StepRun run) {
    Map<String, Integer> index = initializerIndex(g);
    int n = selected.size();
    MagnitudePruner.Cut globalCut = null;
    int items = n;
    int offset = 0;
    if (spec.threshold() == null && spec.scope() == PruneSpec.Scope.GLOBAL) {
      // Two counting passes over all tensors find one exact threshold over their union.
      items = 3 * n;
      MagnitudePruner.Rank rank = new MagnitudePruner.Rank();
      long total = 0;
      for (int j = 0; j < n; j++) {
        run.at(j, items, "measuring " + selected.get(j).name());
        float[] w = load(g, index, selected.get(j));
        MagnitudePruner.requireFinite(selected.get(j).name(), w);
        rank.countCoarse(w);
        total += w.length;
      }
      long k = (long) Math.floor(spec.sparsity() * total);
      if (k > 0) {
        rank.chooseBucket(k);
        for (int j = 0; j < n; j++) {
          run.at(n + j, items, "measuring " + selected.get(j).name());
          rank.countFine(load(g, index, selected.get(j)));
        }
        globalCut = rank.cut(k);
      }
      offset = 2 * n;
    }
    List<TensorReport> reports = new ArrayList<>();
    for (int j = 0; j < n; j++) {
      TensorInfo info = selected.get(j);
      run.at(offset + j, items, "pruning " + info.name());
      int at = index.get(info.name());
      TensorProto original = g.getInitializer(at);
      float[] w = OnnxTensors.toFloats(original);
      MagnitudePruner.requireFinite(info.name(), w);
      float[] before = w.clone();
      if (spec.threshold() != null) {
        MagnitudePruner.pruneAtOrBelow(w, spec.threshold());
      } else if (spec.scope() == PruneSpec.Scope.LAYER) {
        MagnitudePruner.pruneSmallest(w, (long) Math.floor(spec.sparsity() * w.length));
      } else if (globalCut != null) {
        globalCut.apply(w);
      }
      ErrorStats stats = new ErrorStats();
      for (int i = 0; i < w.length; i++) {
        stats.add(before[i], w[i]);
      }
      TensorProto pruned = OnnxTensors.withFloats(original, w);
      g.setInitializer(at, pruned);
      long bytes = pruned.getRawData().size();
      reports.add(new TensorReport(info.name(), info.shape(), w.length, bytes, bytes,
          stats.sparsityBefore(), stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), null, null));
    }
    run.at(items, items, "pruned " + n + " tensors");
    return reports;
  }

  private static float[] load(GraphProto.Builder g, Map<String, Integer> index, TensorInfo t) {
    return OnnxTensors.toFloats(g.getInitializer(index.get(t.name())));
  }

  private static String pruneSummary(PruneSpec spec, List<TensorReport> tensors) {
    long params = 0;
    double zeros = 0;
    for (TensorReport t : tensors) {
      params += t.parameters();
      zeros += t.sparsityAfter() * t.parameters();
    }
    String how = spec.threshold() != null
        ? "|w| <= " + spec.threshold()
        : String.format(Locale.ROOT, "%s sparsity %.4f", spec.scope().name().toLowerCase(Locale.ROOT), spec.sparsity());
    return String.format(Locale.ROOT, "magnitude pruning (%s) of %d tensors: %d of %d weights are now zero (%.2f%%)",
        how, tensors.size(), Math.round(zeros), params, params == 0 ? 0 : 100 * zeros / params);
  }

  // ---- quantization -----------------------------------------------------------------------

  private static ModelProto quantize(ModelProto model, List<TensorInfo> selected, QuantizeSpec spec, StepRun run,
      List<TensorReport> reports) {
    return WeightOnlyQuantization.apply(model, selected, spec, run::at, reports);
  }

  /**
   * The output-channel axis of each initializer, from its first consumer that has one: MatMul
   * weight [.., K, N] the last axis; Gemm B axis 1 (0 with transB); Gemm A axis 0 (1 with
   * transA); Conv W axis 0; ConvTranspose W axis 1 (its layout is [C_in, C_out/group, ...]);
   * Gather data axis 0 (one scale per embedding row). Other uses: axis 0.
   */
  static Map<String, Integer> channelAxes(GraphProto graph) {
    return dev.modelpress.compression.quantize.WeightAxes.of(graph).channelAxes();
  }

  private static String quantizeSummary(QuantizeSpec spec, List<TensorReport> tensors) {
    return WeightOnlyQuantization.summary(spec, tensors);
  }
}
