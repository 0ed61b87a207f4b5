package dev.modelpress.testing;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * The real Fashion-MNIST (Xiao et al. 2017: 28x28 grey images of clothing in 10 classes, 60,000 for
 * training and 10,000 for testing) as Debian's {@code dataset-fashion-mnist} package installs it in
 * {@value #DEFAULT_DIR}, shaped for ONNX classifiers and the job API.
 *
 * <p>Images come as float32 in [0, 1] (pixel / 255), NCHW {@code [n, 1, 28, 28]}, in the files'
 * order; labels as int64 class indices 0..9 ({@link #CLASS_NAMES}). {@link #testSet(int)} and
 * {@link #trainSet(int)} return the arrays named {@value #INPUT} and {@value #LABELS}, ready for
 * {@code NpzWriter}, the {@code FidelityEvaluator} and a dataset upload.
 *
 * <p>The raw pixels are read once per JVM and kept as bytes (47 MB for the training split); floats
 * are made on request, so only what a test asks for costs four bytes a pixel.
 */
public final class FashionMnist {

  /** Where Debian's package puts the idx files. */
  public static final String DEFAULT_DIR = "/usr/share/datasets/fashion-mnist";

  /** Name of the image array (the classifiers' input). */
  public static final String INPUT = "input";

  /** Name of the label array, as the evaluation package expects it. */
  public static final String LABELS = "labels";

  public static final int ROWS = 28;
  public static final int COLS = 28;
  public static final int PIXELS = ROWS * COLS;
  public static final int CLASSES = 10;
  public static final int TRAIN_SIZE = 60_000;
  public static final int TEST_SIZE = 10_000;

  /** Class names by label index. */
  public static final List<String> CLASS_NAMES = List.of(
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");

  /** idx magic numbers: 0x0000 (two zero bytes), type 0x08 (unsigned byte), then the rank. */
  static final int IMAGES_MAGIC = 0x00000803;
  static final int LABELS_MAGIC = 0x00000801;

  /** The two halves of the dataset, named after the files' prefixes. */
  public enum Split {
    TRAIN("train", TRAIN_SIZE),
    TEST("t10k", TEST_SIZE);

    private final String prefix;
    private final int size;

    Split(String prefix, int size) {
      this.prefix = prefix;
      this.size = size;
    }

    /** Number of samples in this split. */
    public int size() {
      return size;
    }
  }

  /**
   * One split as raw bytes: {@code pixels} holds {@code size * 784} unsigned bytes in row-major
   * order, {@code labels} one byte a sample.
   */
  record Raw(byte[] pixels, byte[] labels) {
    int size() {
      return labels.length;
    }
  }

  private static Raw train;
  private static Raw test;

  private FashionMnist() {}

  /** The first {@code n} test samples as {@value #INPUT} {@code [n,1,28,28]} float32 and {@value #LABELS} {@code [n]} int64. */
  public static List<NdArray> testSet(int n) {
    return dataset(Split.TEST, n);
  }

  /** The first {@code n} training samples, shaped like {@link #testSet(int)}. */
  public static List<NdArray> trainSet(int n) {
    return dataset(Split.TRAIN, n);
  }

  /** The first {@code n} samples of a split as the {@value #INPUT} and {@value #LABELS} arrays. */
  public static List<NdArray> dataset(Split split, int n) {
    return dataset(split, 0, n);
  }

  /** Samples {@code [from, from + n)} of a split as the {@value #INPUT} and {@value #LABELS} arrays. */
  public static List<NdArray> dataset(Split split, int from, int n) {
    Raw raw = raw(split);
    checkRange(raw, split, from, n);
    ByteBuffer images = ByteBuffer.allocate(n * PIXELS * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    images.asFloatBuffer().put(toFloats(raw, from, n));
    ByteBuffer labels = ByteBuffer.allocate(n * Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    labels.asLongBuffer().put(toLongs(raw, from, n));
    return List.of(
        new NdArray(INPUT, DType.FLOAT32, new long[] {n, 1, ROWS, COLS}, images),
        new NdArray(LABELS, DType.INT64, new long[] {n}, labels));
  }

  /** Pixels of samples {@code [from, from + n)} in [0, 1], flattened NCHW ({@code n * 784} floats). */
  public static float[] images(Split split, int from, int n) {
    Raw raw = raw(split);
    checkRange(raw, split, from, n);
    return toFloats(raw, from, n);
  }

  /** Labels 0..9 of samples {@code [from, from + n)}. */
  public static long[] labels(Split split, int from, int n) {
    Raw raw = raw(split);
    checkRange(raw, split, from, n);
    return toLongs(raw, from, n);
  }

  /** The first {@code n} test images, flattened NCHW. */
  public static float[] testImages(int n) {
    return images(Split.TEST, 0, n);
  }

  /** The first {@code n} test labels. */
  public static long[] testLabels(int n) {
    return labels(Split.TEST, 0, n);
  }

  /** The first {@code n} training images, flattened NCHW. */
  public static float[] trainImages(int n) {
    return images(Split.TRAIN, 0, n);
  }

  /** The first {@code n} training labels. */
  public static long[] trainLabels(int n) {
    return labels(Split.TRAIN, 0, n);
  }

  /** The NCHW shape of {@code n} images. */
  public static long[] imageShape(int n) {
    return new long[] {n, 1, ROWS, COLS};
  }

  private static float[] toFloats(Raw raw, int from, int n) {
    float[] out = new float[n * PIXELS];
    byte[] pixels = raw.pixels();
    int base = from * PIXELS;
    for (int i = 0; i < out.length; i++) {
      out[i] = (pixels[base + i] & 0xFF) / 255f;
    }
    return out;
  }

  private static long[] toLongs(Raw raw, int from, int n) {
    long[] out = new long[n];
    for (int i = 0; i < n; i++) {
      out[i] = raw.labels()[from + i];
    }
    return out;
  }

  private static void checkRange(Raw raw, Split split, int from, int n) {
    if (from < 0 || n < 0 || from + n > raw.size()) {
      throw new IllegalArgumentException(
          "samples [" + from + ", " + (from + n) + ") are outside the " + raw.size() + " of the " + split + " split");
    }
  }

  static synchronized Raw raw(Split split) {
    if (split == Split.TRAIN) {
      if (train == null) {
        train = read(Path.of(DEFAULT_DIR), split);
      }
      return train;
    }
    if (test == null) {
      test = read(Path.of(DEFAULT_DIR), split);
    }
    return test;
  }

  /**
   * Reads and validates one split from {@code dir}: both files must exist, carry the idx magic
   * numbers, declare {@code split.size()} samples of 28x28, hold exactly that many bytes, and every
   * label must be 0..9.
   *
   * @throws IllegalStateException with what to do when the files are missing or malformed
   */
  static Raw read(Path dir, Split split) {
    Path images = dir.resolve(split.prefix + "-images-idx3-ubyte.gz");
    Path labels = dir.resolve(split.prefix + "-labels-idx1-ubyte.gz");
    for (Path file : List.of(images, labels)) {
      if (!Files.isRegularFile(file)) {
        throw new IllegalStateException(
            "Fashion-MNIST is not installed: " + file + " is missing. Install Debian's package with"
                + " `apt-get install dataset-fashion-mnist` (CI's .ci/run does this).");
      }
    }
    byte[] pixels = readIdx(images, IMAGES_MAGIC, new int[] {split.size, ROWS, COLS});
    byte[] classes = readIdx(labels, LABELS_MAGIC, new int[] {split.size});
    for (int i = 0; i < classes.length; i++) {
      if (classes[i] < 0 || classes[i] >= CLASSES) {
        throw new IllegalStateException(labels + ": label " + classes[i] + " of sample " + i + " is not 0.." + (CLASSES - 1));
      }
    }
    return new Raw(pixels, classes);
  }

  /** The payload of a gzipped idx file after checking its magic number, dims and length. */
  private static byte[] readIdx(Path file, int magic, int[] dims) {
    try (InputStream raw = Files.newInputStream(file);
        DataInputStream in = new DataInputStream(new GZIPInputStream(raw, 1 << 16))) {
      int actualMagic = in.readInt();
      if (actualMagic != magic) {
        throw new IllegalStateException(String.format(
            "%s is not an idx file of %d-D unsigned bytes: magic number 0x%08X, expected 0x%08X",
            file, dims.length, actualMagic, magic));
      }
      long length = 1;
      for (int d = 0; d < dims.length; d++) {
        int actual = in.readInt();
        if (actual != dims[d]) {
          throw new IllegalStateException(
              file + ": dimension " + d + " is " + actual + ", expected " + dims[d] + " (a damaged or different dataset)");
        }
        length *= actual;
      }
      byte[] data = new byte[Math.toIntExact(length)];
      in.readFully(data);
      if (in.read() != -1) {
        throw new IllegalStateException(file + " holds more than the " + length + " bytes its header declares");
      }
      return data;
    } catch (EOFException e) {
      throw new IllegalStateException(file + " is truncated: fewer bytes than its header declares", e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }
}
