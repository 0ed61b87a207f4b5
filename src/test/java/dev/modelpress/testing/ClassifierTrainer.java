package dev.modelpress.testing;

import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.TrainingConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.schedule.ScheduleType;
import org.nd4j.linalg.schedule.StepSchedule;

/**
 * Generates the committed Fashion-MNIST classifiers ({@code src/test/resources/models/*.onnx}):
 * trains a {@link ClassifierNetwork} with ND4J SameDiff on the real training set, writes the
 * trained weights into the network's ONNX graph, and checks that ONNX Runtime computes the same
 * logits as SameDiff on the 10,000 test images before it keeps the file.
 *
 * <p>Tests never run this (it takes minutes); they load the committed files through
 * {@link Classifier}. Run it by hand when a model must change, as {@code docs/test-models.md} says:
 *
 * <pre>
 * java -cp ... dev.modelpress.testing.ClassifierTrainer [--network cnn|mlp|all] [--epochs N (default: per network)]
 *     [--train-samples N] [--batch N] [--seed N] [--out DIR]
 * </pre>
 */
public final class ClassifierTrainer {

  /** Largest |SameDiff logit - ONNX Runtime logit| tolerated before the export is judged wrong. */
  static final double MAX_LOGIT_DIFF = 1e-3;

  /** Training settings. */
  record Settings(int epochs, int trainSamples, int batch, double learningRate, long seed) {}

  /** What a training run produced. */
  record Result(ModelProto model, int correct, double accuracy, double maxLogitDiff, double seconds) {}

  private ClassifierTrainer() {}

  public static void main(String[] args) throws IOException {
    String network = "all";
    Integer epochs = null;
    int trainSamples = FashionMnist.TRAIN_SIZE;
    int batch = 64;
    long seed = 20251125L;
    Path out = Path.of("src/test/resources/models");
    for (int i = 0; i < args.length; i += 2) {
      String value = args[i + 1];
      switch (args[i]) {
        case "--network" -> network = value;
        case "--epochs" -> epochs = Integer.parseInt(value);
        case "--train-samples" -> trainSamples = Integer.parseInt(value);
        case "--batch" -> batch = Integer.parseInt(value);
        case "--seed" -> seed = Long.parseLong(value);
        case "--out" -> out = Path.of(value);
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    List<ClassifierNetwork> networks = network.equals("all")
        ? List.of(ClassifierNetwork.values())
        : List.of(ClassifierNetwork.valueOf(network.toUpperCase(Locale.ROOT)));
    Files.createDirectories(out);
    for (ClassifierNetwork n : networks) {
      Result r = train(n, new Settings(epochs == null ? n.epochs() : epochs, trainSamples, batch, 1e-3, seed));
      Path file = out.resolve(n.fileName());
      OnnxModels.write(r.model(), file);
      System.out.printf(Locale.ROOT,
          "%s: %d parameters, test accuracy %.4f (%d/%d) in SameDiff and ONNX Runtime, max |logit diff| %.2e,"
              + " trained in %.0f s, wrote %s (%d bytes)%n",
          n, n.parameterCount(), r.accuracy(), r.correct(), FashionMnist.TEST_SIZE, r.maxLogitDiff(), r.seconds(),
          file, Files.size(file));
    }
  }

  /** Trains the network, exports it and checks the export in ONNX Runtime. */
  static Result train(ClassifierNetwork network, Settings s) throws IOException {
    Nd4j.getRandom().setSeed(s.seed());
    float[] trainImages = FashionMnist.images(FashionMnist.Split.TRAIN, 0, s.trainSamples());
    long[] trainLabels = FashionMnist.labels(FashionMnist.Split.TRAIN, 0, s.trainSamples());
    float[] testImages = FashionMnist.testImages(FashionMnist.TEST_SIZE);
    long[] testLabels = FashionMnist.testLabels(FashionMnist.TEST_SIZE);

    int batchesPerEpoch = (s.trainSamples() + s.batch() - 1) / s.batch();
    SameDiff sd = SameDiff.create();
    SDVariable logits = network.define(sd, network.initialWeights(s.seed()));
    SDVariable label = sd.placeHolder("label", DataType.FLOAT, -1, FashionMnist.CLASSES);
    sd.loss().softmaxCrossEntropy("loss", label, logits, null);
    sd.setLossVariables("loss");
    sd.setTrainingConfig(new TrainingConfig.Builder()
        // Halving the step size after each epoch lets the last epochs refine the weights instead
        // of bouncing around a minimum at the first epoch's step size.
        .updater(new Adam(new StepSchedule(ScheduleType.ITERATION, s.learningRate(), 0.5, batchesPerEpoch)))
        .dataSetFeatureMapping(ClassifierNetwork.INPUT)
        .dataSetLabelMapping("label")
        .build());

    long start = System.nanoTime();
    Random shuffle = new Random(s.seed());
    for (int epoch = 1; epoch <= s.epochs(); epoch++) {
      long epochStart = System.nanoTime();
      long epochCpu = cpuNanos();
      int[] order = permutation(trainLabels.length, shuffle);
      for (int from = 0; from < order.length; from += s.batch()) {
        sd.fit(batch(trainImages, trainLabels, order, from, Math.min(order.length, from + s.batch())));
      }
      float[][] test = sameDiffLogits(sd, testImages);
      System.out.printf(Locale.ROOT, "%s epoch %d: %.1f s wall, %.1f s CPU, %d iterations so far, test accuracy %.4f%n",
          network, epoch, (System.nanoTime() - epochStart) / 1e9, (cpuNanos() - epochCpu) / 1e9,
          sd.getTrainingConfig().getIterationCount(), accuracy(test, testLabels));
    }
    double seconds = (System.nanoTime() - start) / 1e9;

    float[][] sameDiff = sameDiffLogits(sd, testImages);
    int correct = correct(sameDiff, testLabels);
    double accuracy = (double) correct / testLabels.length;
    Map<String, float[]> weights = new LinkedHashMap<>();
    for (ClassifierNetwork.Param p : network.params()) {
      weights.put(p.name(), sd.getVariable(p.name()).getArr().dup('c').data().asFloat());
    }
    Map<String, String> metadata = new LinkedHashMap<>();
    metadata.put(ClassifierNetwork.ACCURACY_KEY, String.format(Locale.ROOT, "%.4f", accuracy));
    metadata.put(ClassifierNetwork.CORRECT_KEY, Integer.toString(correct));
    metadata.put("training", String.format(Locale.ROOT,
        "ND4J SameDiff %s, Adam lr %s halved after each epoch, %d epochs, batch %d, %d Fashion-MNIST training images, seed %d",
        "1.0.0-M2.1", s.learningRate(), s.epochs(), s.batch(), s.trainSamples(), s.seed()));
    metadata.put("generator", ClassifierTrainer.class.getName());
    ModelProto model = network.toOnnx(weights, metadata);

    // The export is only kept if ONNX Runtime computes what SameDiff trained.
    Path tmp = Files.createTempFile(network.name().toLowerCase(Locale.ROOT), ".onnx");
    try {
      OnnxModels.write(model, tmp);
      float[][] ort = Classifier.logits(tmp, FashionMnist.testSet(FashionMnist.TEST_SIZE));
      double maxDiff = 0;
      for (int i = 0; i < ort.length; i++) {
        for (int k = 0; k < ort[i].length; k++) {
          maxDiff = Math.max(maxDiff, Math.abs(ort[i][k] - sameDiff[i][k]));
        }
      }
      int ortCorrect = correct(ort, testLabels);
      if (maxDiff > MAX_LOGIT_DIFF || ortCorrect != correct) {
        throw new IllegalStateException(String.format(Locale.ROOT,
            "the ONNX export does not compute what SameDiff trained: max |logit diff| %.3g, %d vs %d correct",
            maxDiff, ortCorrect, correct));
      }
      return new Result(model, correct, accuracy, maxDiff, seconds);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /** Logits {@code [n][10]} of SameDiff for flattened NCHW images, 1,000 at a time. */
  static float[][] sameDiffLogits(SameDiff sd, float[] images) {
    int n = images.length / FashionMnist.PIXELS;
    float[][] out = new float[n][];
    for (int from = 0; from < n; from += 1000) {
      int count = Math.min(1000, n - from);
      float[] slice = new float[count * FashionMnist.PIXELS];
      System.arraycopy(images, from * FashionMnist.PIXELS, slice, 0, slice.length);
      INDArray x = Nd4j.create(slice, FashionMnist.imageShape(count), 'c');
      INDArray y = sd.outputSingle(Map.of(ClassifierNetwork.INPUT, x), ClassifierNetwork.OUTPUT);
      for (int i = 0; i < count; i++) {
        out[from + i] = y.getRow(i).dup().data().asFloat();
      }
    }
    return out;
  }

  /** CPU time of the whole process (ND4J computes on native OpenMP threads, not only this one). */
  private static long cpuNanos() {
    return ProcessHandle.current().info().totalCpuDuration().map(java.time.Duration::toNanos).orElse(0L);
  }

  /** A Fisher-Yates shuffle of 0..n-1. */
  private static int[] permutation(int n, Random random) {
    int[] order = new int[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
    }
    for (int i = n - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      int t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    return order;
  }

  /** Samples {@code order[from..to)} as NCHW images and one-hot labels. */
  private static DataSet batch(float[] images, long[] labels, int[] order, int from, int to) {
    int n = to - from;
    float[] x = new float[n * FashionMnist.PIXELS];
    float[] y = new float[n * FashionMnist.CLASSES];
    for (int i = 0; i < n; i++) {
      int sample = order[from + i];
      System.arraycopy(images, sample * FashionMnist.PIXELS, x, i * FashionMnist.PIXELS, FashionMnist.PIXELS);
      y[i * FashionMnist.CLASSES + (int) labels[sample]] = 1f;
    }
    return new DataSet(
        Nd4j.create(x, FashionMnist.imageShape(n), 'c'),
        Nd4j.create(y, new long[] {n, FashionMnist.CLASSES}, 'c'));
  }

  private static double accuracy(float[][] logits, long[] labels) {
    return (double) correct(logits, labels) / labels.length;
  }

  private static int correct(float[][] logits, long[] labels) {
    int correct = 0;
    for (int i = 0; i < logits.length; i++) {
      if (Classifier.argMax(logits[i]) == labels[i]) {
        correct++;
      }
    }
    return correct;
  }
}
