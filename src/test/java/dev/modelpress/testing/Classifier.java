package dev.modelpress.testing;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Real Fashion-MNIST classifiers with real accuracy numbers, for tests of compression that must
 * show what a method costs in accuracy: the committed models (see {@code docs/test-models.md}) and
 * an accuracy measurement in ONNX Runtime that shares no code with the service's evaluator.
 *
 * <pre>{@code
 * Path cnn = Classifier.fashionCnn();
 * double before = Classifier.accuracy(cnn, FashionMnist.testSet(10_000));   // 0.9 and a bit
 * }</pre>
 */
public final class Classifier {

  /** Samples per ONNX Runtime run. */
  private static final int BATCH = 500;

  private static final Map<ClassifierNetwork, Path> FILES = new EnumMap<>(ClassifierNetwork.class);

  private Classifier() {}

  /** The committed CNN ({@link ClassifierNetwork#CNN}) as a file, copied once per JVM. */
  public static Path fashionCnn() {
    return model(ClassifierNetwork.CNN);
  }

  /** The committed MLP ({@link ClassifierNetwork#MLP}), Gemm layers only, copied once per JVM. */
  public static Path fashionMlp() {
    return model(ClassifierNetwork.MLP);
  }

  /**
   * The committed model of a network as a temporary file (ONNX Runtime and the readers take
   * paths). Tests must not modify it: it is shared by every test in the JVM.
   */
  public static synchronized Path model(ClassifierNetwork network) {
    return FILES.computeIfAbsent(network, n -> {
      try (InputStream in = Classifier.class.getResourceAsStream(n.resource())) {
        if (in == null) {
          throw new IllegalStateException(n.resource() + " is not on the test classpath; regenerate it as"
              + " docs/test-models.md says");
        }
        Path file = Files.createTempFile(n.name().toLowerCase() + "-", ".onnx");
        file.toFile().deleteOnExit();
        Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
        return file;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
  }

  /**
   * The fraction of samples whose arg-max logit equals the label, run in ONNX Runtime.
   *
   * @param model an ONNX classifier with one float input {@code [batch, ...]} and a first output
   *     {@code [batch, classes]}
   * @param dataset an image array (named like the model's input, or {@value FashionMnist#INPUT})
   *     and an int64 {@value FashionMnist#LABELS} array, as {@link FashionMnist#testSet(int)} gives
   */
  public static double accuracy(Path model, List<NdArray> dataset) {
    long[] labels = longs(find(dataset, FashionMnist.LABELS));
    int[] predicted = predictions(model, dataset);
    int correct = 0;
    for (int i = 0; i < predicted.length; i++) {
      if (predicted[i] == labels[i]) {
        correct++;
      }
    }
    return (double) correct / predicted.length;
  }

  /** The arg-max class of each sample (the first index on ties), run in ONNX Runtime. */
  public static int[] predictions(Path model, List<NdArray> dataset) {
    float[][] logits = logits(model, dataset);
    int[] out = new int[logits.length];
    for (int i = 0; i < logits.length; i++) {
      out[i] = argMax(logits[i]);
    }
    return out;
  }

  /** The first output of the model, one row per sample, run in ONNX Runtime in batches of 500. */
  public static float[][] logits(Path model, List<NdArray> dataset) {
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(2);
      try (OrtSession session = env.createSession(model.toString(), options)) {
        String inputName = session.getInputNames().iterator().next();
        String outputName = session.getOutputNames().iterator().next();
        NdArray images = dataset.stream().anyMatch(a -> a.name().equals(inputName))
            ? find(dataset, inputName)
            : find(dataset, FashionMnist.INPUT);
        if (images.dtype() != DType.FLOAT32) {
          throw new IllegalArgumentException(images.name() + " must be float32, is " + images.dtype());
        }
        long[] shape = images.shape();
        int samples = (int) shape[0];
        int sampleSize = (int) (images.elementCount() / samples);
        FloatBuffer all = images.data().asFloatBuffer();
        float[][] out = new float[samples][];
        for (int from = 0; from < samples; from += BATCH) {
          int n = Math.min(BATCH, samples - from);
          long[] batchShape = shape.clone();
          batchShape[0] = n;
          FloatBuffer batch = all.slice(from * sampleSize, n * sampleSize);
          try (OnnxTensor input = OnnxTensor.createTensor(env, batch, batchShape);
              OrtSession.Result result = session.run(Map.of(inputName, input))) {
            OnnxTensor output = (OnnxTensor) result.get(outputName).orElseThrow();
            FloatBuffer values = output.getFloatBuffer();
            int classes = values.remaining() / n;
            for (int i = 0; i < n; i++) {
              out[from + i] = new float[classes];
              values.get(out[from + i]);
            }
          }
        }
        return out;
      }
    } catch (OrtException e) {
      throw new IllegalStateException("ONNX Runtime could not run " + model.getFileName() + ": " + e.getMessage(), e);
    }
  }

  /** The index of the largest value, the first one on ties; -1 if any value is NaN. */
  public static int argMax(float[] row) {
    int best = 0;
    for (int k = 0; k < row.length; k++) {
      if (Float.isNaN(row[k])) {
        return -1;
      }
      if (row[k] > row[best]) {
        best = k;
      }
    }
    return best;
  }

  private static NdArray find(List<NdArray> dataset, String name) {
    return dataset.stream()
        .filter(a -> a.name().equals(name))
        .findFirst()
        .orElseThrow(() -> new IllegalArgumentException(
            "dataset has no array '" + name + "': " + Arrays.toString(dataset.toArray())));
  }

  private static long[] longs(NdArray array) {
    if (array.dtype() != DType.INT64) {
      throw new IllegalArgumentException(array.name() + " must be int64, is " + array.dtype());
    }
    long[] out = new long[(int) array.elementCount()];
    ByteBuffer data = array.data();
    data.asLongBuffer().get(out);
    return out;
  }
}
