package dev.modelpress.compression;

import dev.modelpress.evaluation.ActivationCollector;
import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Activation-aware one-shot pruning of MatMul/Gemm weights, y = x·W with W [K inputs, N outputs]:
 *
 * <ul>
 *   <li>Wanda (Sun et al., 2023): score |W_jc|·‖X_j‖₂ with ‖X_j‖₂ the norm of input feature j over
 *       all calibration rows; in every output c the lowest-scoring floor(s·K) inputs are zeroed.
 *   <li>SparseGPT (Frantar and Alistarh, 2023): with H = 2/n·XᵀX (+ damping) and U the upper
 *       Cholesky factor of H⁻¹ (the GPTQ code: {@link Gptq#upperInverseCholesky}), input rows are
 *       processed in blocks; at the start of a block, in every output c, the floor(s·block) rows of
 *       lowest w²/U_jj² are chosen (adaptive mask selection), then row by row the pruned weights'
 *       errors (w − 0)/U_jj are spread over the later rows (the OBS update, as GPTQ spreads rounding
 *       errors).
 * </ul>
 * Both take their statistics from the same pass: one {@link Gptq.Hessian} (Σ x·xᵀ) per layer input,
 * whose diagonal is ‖X_j‖². Weights one at a time; Hessians as in GPTQ.
 */
final class ActivationPruning {

  private ActivationPruning() {}

  /** The pruned model and per-tensor reports; {@code layerErrors} maps tensor → [magnitude, method] calibration error. */
  record Outcome(ModelProto model, List<TensorReport> tensors, Map<String, double[]> layerErrors, int samples) {}

  static Outcome apply(ModelProto model, List<TensorInfo> selected, PruneSpec spec, PipelineContext ctx,
      PruningSteps.ItemProgress progress) {
    if (ctx == null || !ctx.hasCalibration()) {
      throw new CompressionException("pruning method " + spec.method()
          + " needs calibration data: give the job a calibrationDatasetId");
    }
    boolean sparseGpt = spec.method().equals(PruneSpec.SPARSEGPT);
    Map<String, CalibratedQuantization.Layer> layers = CalibratedQuantization.linearLayers(model.getGraph(), selected);
    for (TensorInfo t : selected) {
      if (!layers.containsKey(t.name())) {
        throw new CompressionException("tensor '" + t.name() + "' is not the 2-D weight of a MatMul or Gemm, so "
            + spec.method() + " has no layer input to weigh it by (exclude it)");
      }
    }
    List<String> inputs = new ArrayList<>(new LinkedHashSet<>(
        layers.values().stream().flatMap(l -> l.inputs().stream()).toList()));
    Map<String, Gptq.Hessian> hessians = new LinkedHashMap<>();
    Map<String, TensorProto> initializers = new HashMap<>();
    model.getGraph().getInitializerList().forEach(t -> initializers.put(t.getName(), t));
    GraphProto.Builder g = model.getGraph().toBuilder();
    Map<String, Integer> index = new HashMap<>();
    for (int i = 0; i < g.getInitializerCount(); i++) {
      index.put(g.getInitializer(i).getName(), i);
    }
    List<TensorReport> reports = new ArrayList<>();
    Map<String, double[]> errors = new LinkedHashMap<>();
    int samples;
    try {
      for (String input : inputs) {
        int width = -1;
        for (CalibratedQuantization.Layer l : layers.values()) {
          if (l.inputs().contains(input)) {
            width = l.k();
          }
        }
        hessians.put(input, new Gptq.Hessian(width));
      }
      int total = layers.size() + 1;
      try (ActivationCollector collector = ActivationCollector.open(model, inputs, ctx.workDir(), ctx.intraOpThreads())) {
        samples = collector.run(ctx.calibration(), ctx.batchSize(), ctx.maxCalibrationSamples(), (batch, n, values) -> {
          progress.at(0, total, "collecting layer inputs, batch " + (batch + 1));
          values.forEach((tensor, a) -> {
            Gptq.Hessian h = hessians.get(tensor);
            if (a.rowWidth() != h.width) {
              throw new CompressionException("layer input '" + tensor + "' has width " + a.rowWidth()
                  + " but its weight expects " + h.width);
            }
            h.add(a.values());
          });
        });
      } catch (EvaluationException e) {
        throw new CompressionException("calibration run failed: " + e.getMessage());
      }
      int done = 1;
      for (TensorInfo info : selected) {
        CalibratedQuantization.Layer layer = layers.get(info.name());
        progress.at(done++, total, spec.method() + " " + info.name());
        TensorProto original = initializers.get(info.name());
        float[] w = OnnxTensors.toFloats(original);
        MagnitudePruner.requireFinite(info.name(), w);
        double[] weights = toRows(w, layer);
        double[] dense = weights.clone();
        double[] h;
        try (Gptq.Hessian sum = new Gptq.Hessian(layer.k())) {
          layer.inputs().forEach(in -> sum.add(hessians.get(in)));
          try (INDArray scaled = sum.sum.castTo(DataType.DOUBLE).muli(2.0 / Math.max(1, sum.rows))) {
            h = scaled.dup('c').data().asDouble();
          }
        }
        int k = layer.k();
        int n = layer.n();
        int prune = (int) Math.floor(spec.sparsity() * k);
        if (sparseGpt) {
          sparseGpt(weights, h, k, n, spec.sparsity(), Gptq.DEFAULT_BLOCK, Gptq.DEFAULT_DAMPENING);
        } else {
          wanda(weights, h, k, n, prune);
        }
        errors.put(info.name(), new double[] {
            relativeError(h, dense, magnitudePerOutput(dense, k, n, prune), k, n), relativeError(h, dense, weights, k, n)});
        float[] out = fromRows(weights, layer);
        ErrorStats stats = new ErrorStats();
        for (int i = 0; i < out.length; i++) {
          stats.add(w[i], out[i]);
        }
        TensorProto pruned = OnnxTensors.withFloats(original, out);
        g.setInitializer(index.get(info.name()), pruned);
        long bytes = pruned.getRawData().size();
        reports.add(new TensorReport(info.name(), info.shape(), out.length, bytes, bytes,
            stats.sparsityBefore(), stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), null, null));
      }
    } finally {
      hessians.values().forEach(Gptq.Hessian::close);
    }
    return new Outcome(model.toBuilder().setGraph(g).build(), reports, errors, samples);
  }

  static String summary(PruneSpec spec, Outcome o) {
    double mag = o.layerErrors().values().stream().mapToDouble(e -> e[0]).average().orElse(0);
    double own = o.layerErrors().values().stream().mapToDouble(e -> e[1]).average().orElse(0);
    return String.format(Locale.ROOT, "%s pruning of %d tensors to %.1f%% sparsity on %d calibration samples; "
        + "mean relative layer error %.4g (magnitude per output %.4g)", spec.method(), o.tensors().size(),
        100 * spec.sparsity(), o.samples(), own, mag);
  }

  /** Wanda: in each output column, zeroes the {@code prune} inputs of lowest |w|·‖X_j‖ (ties by index). */
  static void wanda(double[] w, double[] h, int k, int n, int prune) {
    double[] norm = new double[k];
    for (int j = 0; j < k; j++) {
      norm[j] = Math.sqrt(Math.max(0, h[j * k + j]));
    }
    double[] score = new double[k];
    for (int c = 0; c < n; c++) {
      for (int j = 0; j < k; j++) {
        score[j] = Math.abs(w[j * n + c]) * norm[j];
      }
      for (int j : lowest(score, prune)) {
        w[j * n + c] = 0;
      }
    }
  }

  /** Indices of the {@code count} smallest scores (stable: ties go to the lower index). */
  private static int[] lowest(double[] score, int count) {
    Integer[] order = new Integer[score.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Double.compare(score[a], score[b]));
    int[] out = new int[count];
    for (int i = 0; i < count; i++) {
      out[i] = order[i];
    }
    return out;
  }

  /**
   * SparseGPT on rows-as-inputs weights. Each block of rows gets floor(s·count) pruned rows per
   * output; the last block takes the remainder so every output ends with exactly floor(s·K) zeros.
   */
  static void sparseGpt(double[] w, double[] hessian, int k, int n, double sparsity, int blockSize, double dampening) {
    double[] h = hessian.clone();
    double mean = 0;
    for (int i = 0; i < k; i++) {
      mean += h[i * k + i] / k;
    }
    for (int i = 0; i < k; i++) {
      if (h[i * k + i] == 0) {
        h[i * k + i] = 1;
        for (int c = 0; c < n; c++) {
          w[i * n + c] = 0;
        }
      }
    }
    double[] u = Gptq.upperInverseCholesky(h, k, mean == 0 ? 1 : mean, dampening);
    int target = (int) Math.floor(sparsity * k);
    int[] prunedSoFar = new int[n];
    boolean[] mask = new boolean[k * n];
    try (INDArray upper = Nd4j.create(u, new long[] {k, k}, 'c')) {
      for (int i1 = 0; i1 < k; i1 += blockSize) {
        int i2 = Math.min(i1 + blockSize, k);
        int count = i2 - i1;
        // Adaptive mask: chosen on the block's current (already updated) weights.
        double[] score = new double[count];
        for (int c = 0; c < n; c++) {
          int quota = i2 == k ? target - prunedSoFar[c]
              : Math.min(target - prunedSoFar[c], (int) Math.floor(sparsity * i2) - prunedSoFar[c]);
          quota = Math.max(0, Math.min(quota, count));
          for (int i = 0; i < count; i++) {
            int row = i1 + i;
            double d = u[row * k + row];
            score[i] = w[row * n + c] * w[row * n + c] / (d * d);
          }
          for (int i : lowest(score, quota)) {
            mask[(i1 + i) * n + c] = true;
          }
          prunedSoFar[c] += quota;
        }
        double[] errors = new double[count * n];
        for (int i = 0; i < count; i++) {
          int row = i1 + i;
          double d = u[row * k + row];
          for (int c = 0; c < n; c++) {
            if (mask[row * n + c]) {
              errors[i * n + c] = w[row * n + c] / d;
              w[row * n + c] = 0;
            }
          }
          Gptq.compensateWithinBlock(w, u, errors, k, n, i1, i, row, count);
        }
        Gptq.compensateLaterRows(w, upper, errors, k, n, i1, i2);
      }
    }
    // Pruned weights stay exactly zero: later updates never touch earlier rows.
  }

  /** Magnitude pruning with the same per-output groups, as the reported baseline. */
  static double[] magnitudePerOutput(double[] w, int k, int n, int prune) {
    double[] out = w.clone();
    double[] score = new double[k];
    for (int c = 0; c < n; c++) {
      for (int j = 0; j < k; j++) {
        score[j] = Math.abs(w[j * n + c]);
      }
      for (int j : lowest(score, prune)) {
        out[j * n + c] = 0;
      }
    }
    return out;
  }

  /** tr(Δᵀ·H·Δ) / tr(Wᵀ·H·W) for H row-major [K, K] and weights [K, N]. */
  static double relativeError(double[] h, double[] w, double[] approx, int k, int n) {
    double[] delta = new double[k * n];
    for (int i = 0; i < delta.length; i++) {
      delta[i] = w[i] - approx[i];
    }
    try (INDArray hm = Nd4j.create(h, new long[] {k, k}, 'c');
        INDArray d = Nd4j.create(delta, new long[] {k, n}, 'c');
        INDArray x = Nd4j.create(w, new long[] {k, n}, 'c');
        INDArray hd = hm.mmul(d);
        INDArray hx = hm.mmul(x)) {
      double noise = d.mul(hd).sumNumber().doubleValue();
      double signal = x.mul(hx).sumNumber().doubleValue();
      return signal == 0 ? noise : noise / signal;
    }
  }

  private static double[] toRows(float[] w, CalibratedQuantization.Layer l) {
    int k = l.k();
    int n = l.n();
    double[] out = new double[k * n];
    for (int r = 0; r < k; r++) {
      for (int c = 0; c < n; c++) {
        out[r * n + c] = l.transposed() ? w[c * k + r] : w[r * n + c];
      }
    }
    return out;
  }

  private static float[] fromRows(double[] w, CalibratedQuantization.Layer l) {
    int k = l.k();
    int n = l.n();
    float[] out = new float[k * n];
    for (int r = 0; r < k; r++) {
      for (int c = 0; c < n; c++) {
        out[l.transposed() ? c * k + r : r * n + c] = (float) w[r * n + c];
      }
    }
    return out;
  }
}
