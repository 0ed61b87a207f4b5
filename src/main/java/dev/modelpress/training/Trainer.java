package dev.modelpress.training;

import dev.modelpress.compression.CompressionException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Trains a {@link TrainableGraph} with a hand-written loop, so that every bit of state is the
 * trainer's own and a {@link Checkpoint} can capture it: per batch the placeholders are filled,
 * SameDiff computes the gradients of a loss the trainer adds to the graph ({@link LossTerm}s), and
 * Adam (Kingma and Ba 2015, with bias correction) updates the trainer's fp32 copy of each weight,
 * which is then written into the graph's variable.
 *
 * <p>Everything is a function of the config, the starting weights and the data: the validation
 * split and each epoch's shuffle come from {@code java.util.Random} seeded from the seed (and the
 * epoch number), batches are copied sample by sample, and Adam runs in plain Java, so the same
 * inputs give bit-identical weights, also across a resume from a checkpoint.
 *
 * <p>On top of plain training: fixed sparsity masks (masked weights take no update at all, so they
 * keep their exact starting bits), L1 regularisation with pruning ({@link L1Regularization}), and
 * quantization-aware training with a straight-through estimator ({@link QuantizationAware}).
 *
 * <p>Training adds placeholders and loss variables (names starting with {@code modelpress_}) to the
 * graph and leaves the trained weights (not fake-quantized) in its variables.
 */
public final class Trainer {

  static final String PREFIX = "modelpress_";

  private Trainer() {}

  /**
   * Trains from the graph's current weights.
   *
   * @throws IllegalArgumentException if the config or data do not fit the graph
   * @throws CompressionException if the loss becomes NaN or infinite (a learning rate too high)
   * @throws dev.modelpress.compression.CompressionCancelledException if the listener cancels
   */
  public static TrainingResult train(TrainableGraph graph, TrainingData data, TrainingConfig config,
      TrainingListener listener) {
    return new Run(graph, data, config, listener).run(null);
  }

  /**
   * Continues a run from the state after {@code checkpoint.epoch()}, with the same graph, data and
   * config as the run that wrote it: the result is bit-identical to the uninterrupted run's.
   *
   * @throws IllegalArgumentException if the checkpoint's tensors, seed or sample count do not match
   */
  public static TrainingResult resume(TrainableGraph graph, TrainingData data, TrainingConfig config,
      TrainingListener listener, Checkpoint checkpoint) {
    return new Run(graph, data, config, listener).run(checkpoint);
  }

  /** One trained tensor: the trainer's copy of its values and its optimizer state. */
  private static final class Param {
    final String name;
    final long[] shape;
    final float[] w;
    final float[] m;
    final float[] v;
    boolean[] mask;
    float[] best;
    boolean quantized;
    boolean l1;

    Param(String name, long[] shape, float[] w) {
      this.name = name;
      this.shape = shape;
      this.w = w;
      this.m = new float[w.length];
      this.v = new float[w.length];
    }
  }

  private static final class Run {
    private final TrainableGraph graph;
    private final SameDiff sd;
    private final TrainingData data;
    private final TrainingConfig config;
    private final TrainingListener listener;
    private final List<Param> params = new ArrayList<>();
    private final Map<String, String> targetPlaceholders = new LinkedHashMap<>();
    private String labelPlaceholder;
    private int classes;
    private String classifierOutput;
    private String lossName;
    private final int[] trainIdx;
    private final int[] valIdx;
    private final boolean accuracyMetric;

    private long step;
    private int bestEpoch;
    private double bestMetric = Double.NaN;
    private int epochsSinceBest;
    private final List<EpochStats> history = new ArrayList<>();

    Run(TrainableGraph graph, TrainingData data, TrainingConfig config, TrainingListener listener) {
      this.graph = graph;
      this.sd = graph.sameDiff();
      this.data = data;
      this.config = config;
      this.listener = listener == null ? TrainingListener.NONE : listener;
      for (String input : graph.inputs()) {
        if (!data.inputs().containsKey(input)) {
          throw new IllegalArgumentException("training data has no array for graph input '" + input + "'");
        }
      }
      initParams();
      buildLoss();
      accuracyMetric = classifierOutput != null && data.hasLabels();
      int n = data.samples();
      int nVal = (int) Math.round(n * config.validationFraction());
      int[] perm = permutation(identity(n), new Random(mix(config.seed(), 0)));
      valIdx = Arrays.copyOfRange(perm, 0, nVal);
      trainIdx = Arrays.copyOfRange(perm, nVal, n);
      Arrays.sort(valIdx);
      Arrays.sort(trainIdx);
      if (trainIdx.length == 0) {
        throw new IllegalArgumentException("no training samples left after the validation split of " + n);
      }
    }

    private void initParams() {
      Set<String> names = new TreeSet<>(config.trainable() == null ? graph.trainable() : config.trainable());
      for (String name : names) {
        if (!graph.trainable().contains(name)) {
          throw new IllegalArgumentException("'" + name + "' is not a trainable tensor of the graph");
        }
        INDArray arr = sd.getVariable(name).getArr();
        if (arr.dataType() != DataType.FLOAT) {
          throw new IllegalArgumentException("tensor '" + name + "' is " + arr.dataType() + ", training needs float32");
        }
        params.add(new Param(name, arr.shape(), floats(arr)));
      }
      for (String name : config.masks().keySet()) {
        if (!names.contains(name)) {
          throw new IllegalArgumentException("mask given for '" + name + "', which is not trained");
        }
      }
      Set<String> l1 = config.l1() == null ? Set.of()
          : config.l1().tensors() != null ? config.l1().tensors() : matrixNames();
      Set<String> qat = config.quantization() == null ? Set.of() : config.quantization().tensors().keySet();
      for (String name : l1) {
        if (!names.contains(name)) {
          throw new IllegalArgumentException("L1 selects '" + name + "', which is not trained");
        }
      }
      for (String name : qat) {
        if (!names.contains(name)) {
          throw new IllegalArgumentException("quantization-aware training selects '" + name + "', which is not trained");
        }
      }
      for (Param p : params) {
        p.l1 = l1.contains(p.name);
        p.quantized = qat.contains(p.name);
        boolean[] mask = config.masks().get(p.name);
        if (mask != null && mask.length != p.w.length) {
          throw new IllegalArgumentException(
              "mask of '" + p.name + "' has " + mask.length + " entries, the tensor " + p.w.length);
        }
        if (mask == null && config.freezeZeros() && p.shape.length >= 2) {
          mask = new boolean[p.w.length];
          for (int i = 0; i < mask.length; i++) {
            mask[i] = p.w[i] != 0f;
          }
        }
        p.mask = mask == null || allTrue(mask) ? null : mask.clone();
      }
    }

    private Set<String> matrixNames() {
      Set<String> out = new TreeSet<>();
      for (Param p : params) {
        if (p.shape.length >= 2) {
          out.add(p.name);
        }
      }
      return out;
    }

    // ---- the loss ------------------------------------------------------------------------

    private void buildLoss() {
      SDVariable total = null;
      for (LossTerm term : config.losses()) {
        SDVariable t = switch (term) {
          case LossTerm.Distillation d -> distillation(d);
          case LossTerm.CrossEntropy c -> {
            useClasses(c.output(), c.classes());
            if (!data.hasLabels()) {
              throw new IllegalArgumentException("a cross-entropy loss needs labels; the training data has none");
            }
            yield crossEntropy(graph.value(c.output()));
          }
          case LossTerm.Mse m -> {
            SDVariable diff = graph.value(m.output()).sub(target(m.target()));
            yield sd.math().square(diff).mean().mul(m.weight());
          }
          case LossTerm.Cosine c -> {
            int size = data.targets().get(c.target()) == null ? 0 : data.targets().get(c.target()).sampleSize();
            SDVariable b = sd.reshape(target(c.target()), -1, size);
            SDVariable a = sd.reshape(graph.value(c.output()), -1, size);
            SDVariable cos = a.mul(b).sum(1).div(a.norm2(1).mul(b.norm2(1)).add(1e-12));
            yield cos.mean().rsub(1.0).mul(c.weight());
          }
        };
        total = total == null ? t : total.add(t);
      }
      lossName = freeName("loss");
      sd.identity(lossName, total);
      sd.setLossVariables(lossName);
    }

    private SDVariable distillation(LossTerm.Distillation d) {
      SampleArray teacher = data.targets().get(d.target());
      if (teacher == null) {
        throw new IllegalArgumentException("distillation target '" + d.target() + "' is not in the training data");
      }
      useClasses(d.output(), teacher.sampleSize());
      SDVariable student = graph.value(d.output());
      double temperature = d.temperature();
      SDVariable logPs = logSoftmax(student.div(temperature));
      SDVariable logPt = logSoftmax(target(d.target()).div(temperature));
      SDVariable kl = sd.math().exp(logPt).mul(logPt.sub(logPs)).sum(1).mean();
      double alpha = data.hasLabels() ? d.alpha() : 1.0;
      SDVariable soft = kl.mul(alpha * temperature * temperature);
      return alpha < 1 ? soft.add(crossEntropy(student).mul(1 - alpha)) : soft;
    }

    private void useClasses(String output, int n) {
      if (classes != 0 && classes != n) {
        throw new IllegalArgumentException("loss terms disagree on the number of classes: " + classes + " and " + n);
      }
      classes = n;
      if (classifierOutput == null) {
        classifierOutput = output;
      }
    }

    /** {@code -mean_b Σ_c y·log softmax(z)}, with one-hot labels fed as a placeholder. */
    private SDVariable crossEntropy(SDVariable logits) {
      if (labelPlaceholder == null) {
        labelPlaceholder = freeName("labels");
        sd.placeHolder(labelPlaceholder, DataType.FLOAT, -1, classes);
      }
      return sd.getVariable(labelPlaceholder).mul(logSoftmax(logits)).sum(1).mean().neg();
    }

    /**
     * {@code z - max(z) - log Σ exp(z - max(z))} over the last axis of [batch, classes], from basic
     * ops: SameDiff 1.0.0-M2.1 cannot clone a graph holding its LogSoftMax op with an axis (the
     * gradient function's creation fails), and the shift keeps exp from overflowing.
     */
    private SDVariable logSoftmax(SDVariable z) {
      SDVariable shifted = z.sub(z.max(true, 1));
      return shifted.sub(sd.math().log(sd.math().exp(shifted).sum(true, 1)));
    }

    private SDVariable target(String name) {
      SampleArray t = data.targets().get(name);
      if (t == null) {
        throw new IllegalArgumentException("loss target '" + name + "' is not in the training data");
      }
      String ph = targetPlaceholders.get(name);
      if (ph == null) {
        ph = freeName("target_" + targetPlaceholders.size());
        long[] shape = t.shape().clone();
        shape[0] = -1;
        sd.placeHolder(ph, DataType.FLOAT, shape);
        targetPlaceholders.put(name, ph);
      }
      return sd.getVariable(ph);
    }

    private String freeName(String base) {
      String name = PREFIX + base;
      for (int i = 1; sd.hasVariable(name); i++) {
        name = PREFIX + base + "_" + i;
      }
      return name;
    }

    // ---- the loop ------------------------------------------------------------------------

    TrainingResult run(Checkpoint checkpoint) {
      int startEpoch = 1;
      if (checkpoint != null) {
        restore(checkpoint);
        startEpoch = checkpoint.epoch() + 1;
      }
      int batch = config.batchSize();
      int steps = (trainIdx.length + batch - 1) / batch;
      long totalSteps = (long) steps * config.epochs();
      boolean validation = valIdx.length > 0;
      boolean stopped = validation && config.patience() > 0 && epochsSinceBest >= config.patience();
      Checkpoint last = checkpoint;
      int epoch = startEpoch - 1;
      double lr = 0;
      while (!stopped && epoch < config.epochs()) {
        epoch++;
        int[] order = permutation(trainIdx, new Random(mix(config.seed(), epoch)));
        double lossSum = 0;
        for (int s = 0; s < steps; s++) {
          int from = s * batch;
          int to = Math.min(order.length, from + batch);
          Map<String, INDArray> feed = feed(order, from, to);
          pushWeights(true);
          OutAndGrad out = sd.calculateGradientsAndOutputs(feed, List.of(lossName), names());
          double loss = out.getOutputs().get(lossName).getDouble(0);
          if (!Double.isFinite(loss)) {
            throw new CompressionException("training diverged: the loss is " + loss + " at epoch " + epoch + ", step "
                + (s + 1) + "; lower the learning rate");
          }
          lr = config.learningRate().at(step, steps, totalSteps);
          step++;
          adam(out.getGradients(), lr);
          lossSum += loss;
          listener.onStep(epoch, s + 1, steps, loss);
        }
        pushWeights(true);
        double valLoss = Double.NaN;
        double metric = Double.NaN;
        if (validation) {
          double[] ev = evaluate(valIdx);
          valLoss = ev[0];
          metric = accuracyMetric ? ev[1] : ev[0];
          boolean improved = bestEpoch == 0 || (accuracyMetric ? metric > bestMetric : metric < bestMetric);
          if (improved) {
            bestEpoch = epoch;
            bestMetric = metric;
            epochsSinceBest = 0;
            if (config.restoreBest()) {
              for (Param p : params) {
                p.best = p.w.clone();
              }
            }
          } else {
            epochsSinceBest++;
          }
        }
        EpochStats stats = new EpochStats(epoch, lossSum / steps, valLoss, metric, lr);
        history.add(stats);
        last = checkpoint(epoch);
        listener.onEpoch(stats, last);
        stopped = validation && config.patience() > 0 && epochsSinceBest >= config.patience();
      }
      return finish(epoch, stopped && epoch < config.epochs(), last);
    }

    private TrainingResult finish(int epoch, boolean stoppedEarly, Checkpoint last) {
      if (bestEpoch > 0 && config.restoreBest()) {
        for (Param p : params) {
          if (p.best != null) {
            System.arraycopy(p.best, 0, p.w, 0, p.w.length);
          }
        }
      }
      if (config.l1() != null) {
        prune(config.l1());
      }
      pushWeights(false);
      Map<String, INDArray> weights = new LinkedHashMap<>();
      Map<String, Double> sparsity = new LinkedHashMap<>();
      long zeros = 0;
      long total = 0;
      for (Param p : params) {
        weights.put(p.name, Nd4j.create(p.w.clone(), p.shape, 'c'));
        if (p.shape.length >= 2) {
          long z = 0;
          for (float x : p.w) {
            z += x == 0f ? 1 : 0;
          }
          sparsity.put(p.name, (double) z / p.w.length);
          zeros += z;
          total += p.w.length;
        }
      }
      return new TrainingResult(weights, history, epoch, stoppedEarly, bestEpoch, bestMetric,
          accuracyMetric ? "accuracy" : "loss", step, sparsity, total == 0 ? 0 : (double) zeros / total, last);
    }

    private List<String> names() {
      return params.stream().map(p -> p.name).toList();
    }

    /** Adam on the trainer's copies; masked entries take no step at all, so they keep their exact bits. */
    private void adam(Map<String, INDArray> gradients, double lr) {
      float b1 = (float) config.beta1();
      float b2 = (float) config.beta2();
      double bc1 = 1 - Math.pow(config.beta1(), step);
      double bc2 = 1 - Math.pow(config.beta2(), step);
      double eps = config.epsilon();
      float lambda = config.l1() == null ? 0f : (float) config.l1().lambda();
      for (Param p : params) {
        INDArray gArr = gradients.get(p.name);
        float[] g = gArr == null ? new float[p.w.length] : floats(gArr);
        float[] w = p.w;
        float[] m = p.m;
        float[] v = p.v;
        boolean[] mask = p.mask;
        boolean l1 = p.l1 && lambda > 0;
        for (int i = 0; i < w.length; i++) {
          if (mask != null && !mask[i]) {
            continue;
          }
          float gi = l1 ? g[i] + lambda * Math.signum(w[i]) : g[i];
          m[i] = b1 * m[i] + (1 - b1) * gi;
          v[i] = b2 * v[i] + (1 - b2) * gi * gi;
          w[i] -= (float) (lr * (m[i] / bc1) / (Math.sqrt(v[i] / bc2) + eps));
        }
      }
    }

    /** Writes the trainer's weights into the graph, fake-quantized where QAT applies and {@code quantize} is set. */
    private void pushWeights(boolean quantize) {
      for (Param p : params) {
        float[] values = quantize && p.quantized ? config.quantization().fakeQuantize(p.name, p.shape, p.w) : p.w;
        sd.getVariable(p.name).getArr().assign(Nd4j.create(values, p.shape, 'c'));
      }
    }

    private Map<String, INDArray> feed(int[] order, int from, int to) {
      Map<String, INDArray> feed = new HashMap<>();
      int n = to - from;
      for (String input : graph.inputs()) {
        SampleArray a = data.inputs().get(input);
        INDArray x = Nd4j.create(a.gather(order, from, to), a.batchShape(n), 'c');
        // Integer inputs (token ids, masks) travel as exact floats and are fed in their own type.
        DataType type = sd.getVariable(input).dataType();
        feed.put(input, type == DataType.FLOAT ? x : x.castTo(type));
      }
      targetPlaceholders.forEach((target, ph) -> {
        SampleArray a = data.targets().get(target);
        feed.put(ph, Nd4j.create(a.gather(order, from, to), a.batchShape(n), 'c'));
      });
      if (labelPlaceholder != null) {
        float[] oneHot = new float[n * classes];
        for (int i = 0; i < n; i++) {
          long label = data.labels()[order[from + i]];
          if (label < 0 || label >= classes) {
            throw new IllegalArgumentException("label " + label + " of sample " + order[from + i] + " is not in [0, "
                + classes + ")");
          }
          oneHot[i * classes + (int) label] = 1f;
        }
        feed.put(labelPlaceholder, Nd4j.create(oneHot, new long[] {n, classes}, 'c'));
      }
      return feed;
    }

    /** Mean loss and (for classifiers with labels) accuracy over {@code idx}, with the weights as they are in the graph. */
    private double[] evaluate(int[] idx) {
      double lossSum = 0;
      long correct = 0;
      List<String> outputs = accuracyMetric ? List.of(lossName, classifierOutput) : List.of(lossName);
      for (int from = 0; from < idx.length; from += config.evalBatchSize()) {
        int to = Math.min(idx.length, from + config.evalBatchSize());
        Map<String, INDArray> out = sd.output(feed(idx, from, to), outputs);
        lossSum += out.get(lossName).getDouble(0) * (to - from);
        if (accuracyMetric) {
          INDArray logits = out.get(classifierOutput);
          float[] rows = floats(logits);
          int c = (int) logits.size(logits.rank() - 1);
          for (int i = 0; i < to - from; i++) {
            int best = 0;
            for (int k = 1; k < c; k++) {
              if (rows[i * c + k] > rows[i * c + best]) {
                best = k;
              }
            }
            correct += best == data.labels()[idx[from + i]] ? 1 : 0;
          }
        }
      }
      return new double[] {lossSum / idx.length, (double) correct / idx.length};
    }

    /** Sets what L1 drove small to exactly zero, by threshold or to the target sparsity over the selection. */
    private void prune(L1Regularization l1) {
      double threshold;
      if (l1.pruneBelow() != null) {
        threshold = l1.pruneBelow();
        for (Param p : params) {
          if (p.l1) {
            for (int i = 0; i < p.w.length; i++) {
              if (Math.abs(p.w[i]) < threshold) {
                p.w[i] = 0f;
              }
            }
          }
        }
        return;
      }
      int total = 0;
      for (Param p : params) {
        total += p.l1 ? p.w.length : 0;
      }
      int k = (int) Math.round(total * l1.targetSparsity());
      if (k == 0) {
        return;
      }
      // Rank every selected weight by magnitude (ties by position) and zero the k smallest, so the
      // sparsity is exactly the target whatever ties the weights hold.
      long[] keys = new long[total];
      int j = 0;
      int tensor = 0;
      List<Param> selected = params.stream().filter(p -> p.l1).toList();
      int[] offsets = new int[selected.size() + 1];
      for (Param p : selected) {
        offsets[tensor + 1] = offsets[tensor] + p.w.length;
        for (int i = 0; i < p.w.length; i++) {
          keys[j] = ((long) Float.floatToIntBits(Math.abs(p.w[i])) << 32) | j;
          j++;
        }
        tensor++;
      }
      Arrays.sort(keys);
      for (int r = 0; r < k; r++) {
        int flat = (int) keys[r];
        int t = Arrays.binarySearch(offsets, flat);
        t = t >= 0 ? t : -t - 2;
        selected.get(t).w[flat - offsets[t]] = 0f;
      }
    }

    // ---- checkpoints -----------------------------------------------------------------------

    private Checkpoint checkpoint(int epoch) {
      List<Checkpoint.TensorState> tensors = new ArrayList<>();
      for (Param p : params) {
        tensors.add(new Checkpoint.TensorState(p.name, p.shape.clone(), p.w.clone(), p.m.clone(), p.v.clone(),
            p.mask == null ? null : p.mask.clone(), p.best == null ? null : p.best.clone()));
      }
      return new Checkpoint(config.seed(), data.samples(), epoch, step, bestEpoch, bestMetric, epochsSinceBest, history,
          tensors);
    }

    private void restore(Checkpoint c) {
      if (c.seed() != config.seed()) {
        throw new IllegalArgumentException("checkpoint was written by a run with seed " + c.seed() + ", this run uses "
            + config.seed());
      }
      if (c.trainSamples() != data.samples()) {
        throw new IllegalArgumentException("checkpoint was written for " + c.trainSamples() + " samples, this data has "
            + data.samples());
      }
      if (!c.tensorNames().equals(names())) {
        throw new IllegalArgumentException("checkpoint holds tensors " + c.tensorNames() + ", this run trains " + names());
      }
      for (int i = 0; i < params.size(); i++) {
        Param p = params.get(i);
        Checkpoint.TensorState t = c.tensors().get(i);
        if (!Arrays.equals(t.shape(), p.shape)) {
          throw new IllegalArgumentException("checkpoint tensor '" + p.name + "' has shape " + Arrays.toString(t.shape())
              + ", the graph " + Arrays.toString(p.shape));
        }
        System.arraycopy(t.weights(), 0, p.w, 0, p.w.length);
        System.arraycopy(t.m(), 0, p.m, 0, p.m.length);
        System.arraycopy(t.v(), 0, p.v, 0, p.v.length);
        p.mask = t.mask() == null ? null : t.mask().clone();
        p.best = t.best() == null ? null : t.best().clone();
      }
      step = c.step();
      bestEpoch = c.bestEpoch();
      bestMetric = c.bestMetric();
      epochsSinceBest = c.epochsSinceBest();
      history.addAll(c.history());
    }
  }

  // ---- helpers ---------------------------------------------------------------------------

  /** The seed of the generator for epoch {@code epoch} (0 = the validation split). */
  static long mix(long seed, int epoch) {
    return seed * 0x9E3779B97F4A7C15L + epoch;
  }

  private static int[] identity(int n) {
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      out[i] = i;
    }
    return out;
  }

  /** A Fisher-Yates shuffle of a copy of {@code values}. */
  static int[] permutation(int[] values, Random random) {
    int[] out = values.clone();
    for (int i = out.length - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      int t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return out;
  }

  private static boolean allTrue(boolean[] mask) {
    for (boolean b : mask) {
      if (!b) {
        return false;
      }
    }
    return true;
  }

  /** The values of {@code a} in C order as float32. */
  static float[] floats(INDArray a) {
    INDArray c = a.dataType() == DataType.FLOAT ? a : a.castTo(DataType.FLOAT);
    return c.dup('c').data().asFloat();
  }
}
