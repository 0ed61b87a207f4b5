package dev.modelpress.worker;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzWriter;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.zip.GZIPInputStream;

/**
 * A real classifier for search tests: a 784-128-10 MLP trained here on Debian's Fashion-MNIST
 * with plain SGD (a few seconds), exported to ONNX ({@code input [N,784]} -> {@code logits [N,10]}),
 * and an ONNX Runtime accuracy measurement that shares no code with the service.
 */
final class FashionMlp {

  static final String DIR = "/usr/share/datasets/fashion-mnist";
  static final int PIXELS = 784;
  static final int HIDDEN = 128;
  static final int CLASSES = 10;

  private FashionMlp() {}

  /** Images scaled to [0,1], row-major [n,784], from {@code from}. */
  static float[] images(String split, int from, int n) {
    try (DataInputStream in = new DataInputStream(new GZIPInputStream(
        Files.newInputStream(Path.of(DIR, split + "-images-idx3-ubyte.gz")), 1 << 16))) {
      if (in.readInt() != 0x803) {
        throw new IOException("not an idx3 image file");
      }
      in.readInt();
      in.readInt();
      in.readInt();
      in.skipNBytes((long) from * PIXELS);
      byte[] raw = in.readNBytes(n * PIXELS);
      float[] out = new float[raw.length];
      for (int i = 0; i < raw.length; i++) {
        out[i] = (raw[i] & 0xff) / 255f;
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static long[] labels(String split, int from, int n) {
    try (DataInputStream in = new DataInputStream(new GZIPInputStream(
        Files.newInputStream(Path.of(DIR, split + "-labels-idx1-ubyte.gz"))))) {
      if (in.readInt() != 0x801) {
        throw new IOException("not an idx1 label file");
      }
      in.readInt();
      in.skipNBytes(from);
      byte[] raw = in.readNBytes(n);
      long[] out = new long[n];
      for (int i = 0; i < n; i++) {
        out[i] = raw[i];
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Trains on {@code samples} training images for {@code epochs} and returns the ONNX model. */
  static ModelProto train(int samples, int epochs, long seed) {
    float[] x = images("train", 0, samples);
    long[] y = labels("train", 0, samples);
    Random random = new Random(seed);
    float[] w1 = new float[PIXELS * HIDDEN];
    float[] b1 = new float[HIDDEN];
    float[] w2 = new float[HIDDEN * CLASSES];
    float[] b2 = new float[CLASSES];
    double s1 = Math.sqrt(2.0 / PIXELS);
    double s2 = Math.sqrt(2.0 / HIDDEN);
    for (int i = 0; i < w1.length; i++) {
      w1[i] = (float) (random.nextGaussian() * s1);
    }
    for (int i = 0; i < w2.length; i++) {
      w2[i] = (float) (random.nextGaussian() * s2);
    }
    float lr = 0.01f;
    float[] h = new float[HIDDEN];
    float[] p = new float[CLASSES];
    float[] dh = new float[HIDDEN];
    int[] order = new int[samples];
    for (int i = 0; i < samples; i++) {
      order[i] = i;
    }
    for (int epoch = 0; epoch < epochs; epoch++) {
      for (int i = samples - 1; i > 0; i--) {
        int j = random.nextInt(i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      for (int idx : order) {
        int xo = idx * PIXELS;
        System.arraycopy(b1, 0, h, 0, HIDDEN);
        for (int i = 0; i < PIXELS; i++) {
          float xi = x[xo + i];
          if (xi == 0) {
            continue;
          }
          int row = i * HIDDEN;
          for (int k = 0; k < HIDDEN; k++) {
            h[k] += xi * w1[row + k];
          }
        }
        for (int k = 0; k < HIDDEN; k++) {
          h[k] = Math.max(0, h[k]);
        }
        float max = Float.NEGATIVE_INFINITY;
        for (int c = 0; c < CLASSES; c++) {
          float z = b2[c];
          for (int k = 0; k < HIDDEN; k++) {
            z += h[k] * w2[k * CLASSES + c];
          }
          p[c] = z;
          max = Math.max(max, z);
        }
        float sum = 0;
        for (int c = 0; c < CLASSES; c++) {
          p[c] = (float) Math.exp(p[c] - max);
          sum += p[c];
        }
        for (int c = 0; c < CLASSES; c++) {
          p[c] = p[c] / sum - (c == y[idx] ? 1 : 0); // dLoss/dz
        }
        for (int k = 0; k < HIDDEN; k++) {
          float g = 0;
          for (int c = 0; c < CLASSES; c++) {
            g += p[c] * w2[k * CLASSES + c];
            w2[k * CLASSES + c] -= lr * p[c] * h[k];
          }
          dh[k] = h[k] > 0 ? g : 0;
        }
        for (int c = 0; c < CLASSES; c++) {
          b2[c] -= lr * p[c];
        }
        for (int i = 0; i < PIXELS; i++) {
          float xi = x[xo + i];
          if (xi == 0) {
            continue;
          }
          int row = i * HIDDEN;
          for (int k = 0; k < HIDDEN; k++) {
            w1[row + k] -= lr * dh[k] * xi;
          }
        }
        for (int k = 0; k < HIDDEN; k++) {
          b1[k] -= lr * dh[k];
        }
      }
    }
    return OnnxGraphBuilder.opset(13)
        .inputSymbolic("input", TensorProto.DataType.FLOAT, "N", (long) PIXELS)
        .output("logits")
        .initializer("fc1.weight", w1, PIXELS, HIDDEN)
        .initializer("fc1.bias", b1, HIDDEN)
        .initializer("fc2.weight", w2, HIDDEN, CLASSES)
        .initializer("fc2.bias", b2, CLASSES)
        .matMul("input", "fc1.weight", "h0")
        .add("h0", "fc1.bias", "h1")
        .relu("h1", "h2")
        .matMul("h2", "fc2.weight", "z0")
        .add("z0", "fc2.bias", "logits")
        .build();
  }

  /** An evaluation dataset of {@code n} test images with their labels. */
  static Path testDataset(Path dir, int n) throws IOException {
    float[] x = images("t10k", 0, n);
    long[] y = labels("t10k", 0, n);
    ByteBuffer xb = ByteBuffer.allocate(x.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    xb.asFloatBuffer().put(x);
    ByteBuffer yb = ByteBuffer.allocate(y.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    yb.asLongBuffer().put(y);
    Path file = dir.resolve("fashion-test-" + n + ".npz");
    NpzWriter.write(file, List.of(new NdArray("input", DType.FLOAT32, new long[] {n, PIXELS}, xb),
        new NdArray("labels", DType.INT64, new long[] {n}, yb)), false);
    return file;
  }

  /** Top-1 accuracy of an ONNX model on the first {@code n} test images, measured in ONNX Runtime. */
  static double accuracy(Path model, int n) {
    float[] x = images("t10k", 0, n);
    long[] y = labels("t10k", 0, n);
    try (OrtRunner ort = new OrtRunner(model)) {
      float[] logits = ort.run("logits", "input", x, n, PIXELS);
      int correct = 0;
      for (int i = 0; i < n; i++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++) {
          if (logits[i * CLASSES + c] > logits[i * CLASSES + best]) {
            best = c;
          }
        }
        correct += best == y[i] ? 1 : 0;
      }
      return (double) correct / n;
    }
  }
}
