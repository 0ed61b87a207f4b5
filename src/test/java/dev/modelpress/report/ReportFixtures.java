package dev.modelpress.report;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzWriter;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/** Small real models and labelled datasets for report tests. */
final class ReportFixtures {

  /** A tensor name that is an HTML injection attempt. */
  static final String EVIL = "<script>alert(1)</script>";
  static final int FEATURES = 32;
  static final int HIDDEN = 48;
  static final int CLASSES = 6;

  private ReportFixtures() {}

  /**
   * {@code logits = relu(x · W1 + b1) · W2} with W1 named {@link #EVIL}: a classifier whose first
   * weight tensor's name must be escaped wherever the report shows it.
   */
  static Path classifier(Path dir) throws IOException {
    Path model = OnnxGraphBuilder.opset(13)
        .inputSymbolic("x", TensorProto.DataType.FLOAT, "batch", FEATURES)
        .initializer(EVIL, OnnxGraphBuilder.randomFloats(1, FEATURES * HIDDEN, 0.4f), FEATURES, HIDDEN)
        .initializer("hidden.bias", OnnxGraphBuilder.randomFloats(2, HIDDEN, 0.1f), HIDDEN)
        .initializer("head.weight", OnnxGraphBuilder.randomFloats(3, HIDDEN * CLASSES, 0.4f), HIDDEN, CLASSES)
        .matMul("x", EVIL, "h0")
        .add("h0", "hidden.bias", "h1")
        .relu("h1", "h")
        .matMul("h", "head.weight", "logits")
        .output("logits")
        .writeTo(dir);
    return Files.move(model, dir.resolve("classifier.onnx"));
  }

  /**
   * {@code samples} inputs with labels: the original's predictions with every 8th one changed, so
   * the original's accuracy is about 87.5% and both models have errors to compare.
   */
  static Path labelledDataset(Path model, Path dir, int samples) throws IOException {
    float[] x = OnnxGraphBuilder.randomFloats(4, samples * FEATURES, 1f);
    float[] logits;
    try (OrtRunner runner = new OrtRunner(model)) {
      logits = runner.run("logits", "x", x, samples, FEATURES);
    }
    ByteBuffer labels = ByteBuffer.allocate(samples * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < samples; i++) {
      int best = 0;
      for (int k = 1; k < CLASSES; k++) {
        if (logits[i * CLASSES + k] > logits[i * CLASSES + best]) {
          best = k;
        }
      }
      labels.putLong(i % 8 == 0 ? (best + 1) % CLASSES : best);
    }
    ByteBuffer data = ByteBuffer.allocate(x.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : x) {
      data.putFloat(v);
    }
    Path npz = dir.resolve("eval-" + samples + ".npz");
    NpzWriter.write(npz, java.util.List.of(
        new NdArray("x", DType.FLOAT32, new long[] {samples, FEATURES}, data.flip()),
        new NdArray("labels", DType.INT64, new long[] {samples}, labels.flip())), false);
    return npz;
  }

  /**
   * {@code y = x · W1 · W2 ⋯ · Wn}, {@code width × width} each, and a dataset for it: weight-only
   * int8 quantization adds a DequantizeLinear per weight that runs on every inference.
   */
  static Path matMulChain(Path dir, int width, int depth) throws IOException {
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(13).inputSymbolic("x", TensorProto.DataType.FLOAT, "batch", width);
    Random random = new Random(9);
    String previous = "x";
    for (int i = 0; i < depth; i++) {
      float[] w = new float[width * width];
      for (int r = 0; r < width; r++) {
        for (int c = 0; c < width; c++) {
          // Near-orthogonal scale keeps activations bounded through the chain.
          w[r * width + c] = (float) (random.nextGaussian() / Math.sqrt(width));
        }
      }
      b.initializer("layer" + i + ".weight", w, width, width).matMul(previous, "layer" + i + ".weight", "h" + i);
      previous = "h" + i;
    }
    Path model = b.node("Identity", java.util.List.of(previous), java.util.List.of("y")).output("y").writeTo(dir);
    return Files.move(model, dir.resolve("chain.onnx"));
  }

  static Path floatDataset(Path dir, String name, int samples, int width) throws IOException {
    float[] x = OnnxGraphBuilder.randomFloats(5, samples * width, 1f);
    ByteBuffer data = ByteBuffer.allocate(x.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : x) {
      data.putFloat(v);
    }
    Path npz = dir.resolve(name);
    NpzWriter.write(npz, java.util.List.of(new NdArray("x", DType.FLOAT32, new long[] {samples, width}, data.flip())),
        false);
    return npz;
  }
}
