package dev.modelpress.testing;

import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.Conv2DConfig;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.Pooling2DConfig;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The Fashion-MNIST classifiers of the test kit, each defined twice over the same named weights:
 * as a SameDiff graph (to train) and as a standard ONNX opset-13 graph (to ship and to run in ONNX
 * Runtime).
 *
 * <p>Weights are kept in ONNX's layouts everywhere, also inside SameDiff: {@code Conv} weights
 * {@code [out, in, kh, kw]}, {@code Gemm} weights {@code [out, in]} used with {@code transB = 1}
 * (the layout PyTorch exports). SameDiff's {@code conv2d} wants {@code [kh, kw, in, out]}, so the
 * SameDiff graph permutes the ONNX-layout variable on the way in; the trained variables are then
 * the ONNX initializers as they are, and {@code ClassifierKitTest} checks that both graphs
 * compute the same logits from them.
 */
public enum ClassifierNetwork {

  /**
   * Conv(1→16, 3x3, pad 1) + Relu + MaxPool 2 → Conv(16→32, 3x3, pad 1) + Relu + MaxPool 2 →
   * Flatten → Gemm(1568→64) + Relu → Gemm(64→10): 105,866 parameters.
   */
  CNN("fashion-cnn", 3, List.of(
      new Param("conv1.weight", 16, 1, 3, 3),
      new Param("conv1.bias", 16),
      new Param("conv2.weight", 32, 16, 3, 3),
      new Param("conv2.bias", 32),
      new Param("fc1.weight", 64, 32 * 7 * 7),
      new Param("fc1.bias", 64),
      new Param("fc2.weight", 10, 64),
      new Param("fc2.bias", 10))),

  /** Flatten → Gemm(784→256) + Relu → Gemm(256→128) + Relu → Gemm(128→10): 235,146 parameters. */
  MLP("fashion-mlp", 5, List.of(
      new Param("fc1.weight", 256, 784),
      new Param("fc1.bias", 256),
      new Param("fc2.weight", 128, 256),
      new Param("fc2.bias", 128),
      new Param("fc3.weight", 10, 128),
      new Param("fc3.bias", 10)));

  /** The graph input: float32 {@code [batch, 1, 28, 28]} with a symbolic batch dimension. */
  public static final String INPUT = "input";

  /** The graph output: float32 logits {@code [batch, 10]} (no softmax). */
  public static final String OUTPUT = "logits";

  /** Metadata key under which the trainer records the test-set accuracy it measured. */
  public static final String ACCURACY_KEY = "fashion_mnist_test_accuracy";

  /** Metadata key under which the trainer records how many of the 10,000 test images it got right. */
  public static final String CORRECT_KEY = "fashion_mnist_test_correct";

  /** One weight tensor: its ONNX initializer name and shape (ONNX layout). */
  public record Param(String name, long... shape) {

    /** Elements in the tensor. */
    public int size() {
      return Math.toIntExact(Arrays.stream(shape).reduce(1, (a, b) -> a * b));
    }

    /** Inputs feeding one output unit: every dim but the first (a bias has none). */
    int fanIn() {
      return shape.length == 1 ? 0 : size() / (int) shape[0];
    }
  }

  private final String baseName;
  private final int epochs;
  private final List<Param> params;

  ClassifierNetwork(String baseName, int epochs, List<Param> params) {
    this.baseName = baseName;
    this.epochs = epochs;
    this.params = params;
  }

  /** Epochs the committed model was trained for (the trainer's default for this network). */
  public int epochs() {
    return epochs;
  }

  /** The weight tensors in graph order. */
  public List<Param> params() {
    return params;
  }

  /** Total number of weights and biases. */
  public long parameterCount() {
    return params.stream().mapToLong(Param::size).sum();
  }

  /** The committed model's file name, e.g. {@code fashion-cnn.onnx}. */
  public String fileName() {
    return baseName + ".onnx";
  }

  /** The committed model's classpath resource. */
  public String resource() {
    return "/models/" + fileName();
  }

  /**
   * Deterministic starting weights: He-uniform ({@code U(-sqrt(6/fanIn), sqrt(6/fanIn))}, suited
   * to Relu) for weight tensors, zero biases; drawn from {@code java.util.Random(seed)} in
   * {@link #params()} order so a run does not depend on ND4J's generator.
   */
  public Map<String, float[]> initialWeights(long seed) {
    Random random = new Random(seed);
    Map<String, float[]> weights = new LinkedHashMap<>();
    for (Param p : params) {
      float[] values = new float[p.size()];
      if (p.fanIn() > 0) {
        double bound = Math.sqrt(6.0 / p.fanIn());
        for (int i = 0; i < values.length; i++) {
          values[i] = (float) ((random.nextDouble() * 2 - 1) * bound);
        }
      }
      weights.put(p.name(), values);
    }
    return weights;
  }

  /**
   * Declares this network in {@code sd}: a {@value #INPUT} placeholder {@code [-1, 1, 28, 28]}, one
   * trainable variable per {@link Param} (named like the ONNX initializer, ONNX layout, starting at
   * {@code weights}) and returns the logits {@code [batch, 10]}, named {@value #OUTPUT}.
   */
  public SDVariable define(SameDiff sd, Map<String, float[]> weights) {
    SDVariable x = sd.placeHolder(INPUT, DataType.FLOAT, -1, 1, FashionMnist.ROWS, FashionMnist.COLS);
    Map<String, SDVariable> v = new LinkedHashMap<>();
    for (Param p : params) {
      float[] values = weights.get(p.name());
      if (values == null || values.length != p.size()) {
        throw new IllegalArgumentException("weights for " + p.name() + " missing or not " + p.size() + " values");
      }
      v.put(p.name(), sd.var(p.name(), Nd4j.create(values, p.shape(), 'c')));
    }
    SDVariable logits = switch (this) {
      case CNN -> {
        SDVariable h = pool(sd, sd.nn().relu(conv(sd, x, v.get("conv1.weight"), v.get("conv1.bias")), 0));
        h = pool(sd, sd.nn().relu(conv(sd, h, v.get("conv2.weight"), v.get("conv2.bias")), 0));
        h = sd.reshape(h, -1, 32 * 7 * 7);
        h = sd.nn().relu(dense(sd, h, v.get("fc1.weight"), v.get("fc1.bias")), 0);
        yield dense(sd, h, v.get("fc2.weight"), v.get("fc2.bias"));
      }
      case MLP -> {
        SDVariable h = sd.reshape(x, -1, FashionMnist.PIXELS);
        h = sd.nn().relu(dense(sd, h, v.get("fc1.weight"), v.get("fc1.bias")), 0);
        h = sd.nn().relu(dense(sd, h, v.get("fc2.weight"), v.get("fc2.bias")), 0);
        yield dense(sd, h, v.get("fc3.weight"), v.get("fc3.bias"));
      }
    };
    return sd.identity(OUTPUT, logits);
  }

  /** 3x3 convolution, stride 1, padding 1, NCHW; the ONNX-layout weight is permuted to SameDiff's [kh, kw, in, out]. */
  private static SDVariable conv(SameDiff sd, SDVariable x, SDVariable onnxWeight, SDVariable bias) {
    Conv2DConfig config = Conv2DConfig.builder()
        .kH(3).kW(3).sH(1).sW(1).pH(1).pW(1).dH(1).dW(1)
        .dataFormat(Conv2DConfig.NCHW)
        .build();
    return sd.cnn().conv2d(x, sd.permute(onnxWeight, 2, 3, 1, 0), bias, config);
  }

  private static SDVariable pool(SameDiff sd, SDVariable x) {
    return sd.cnn().maxPooling2d(x, Pooling2DConfig.builder().kH(2).kW(2).sH(2).sW(2).isNHWC(false).build());
  }

  /** {@code x · Wᵀ + b}, exactly what ONNX {@code Gemm(x, W, b, transB=1)} computes. */
  private static SDVariable dense(SameDiff sd, SDVariable x, SDVariable onnxWeight, SDVariable bias) {
    return sd.mmul(x, onnxWeight, false, true, false).add(bias);
  }

  /**
   * The network as an ONNX opset-13 model over the given weights (ONNX layout), with input
   * {@value #INPUT} {@code [batch, 1, 28, 28]} and output {@value #OUTPUT} {@code [batch, 10]}.
   *
   * @param metadata recorded as the model's {@code metadata_props}
   */
  public ModelProto toOnnx(Map<String, float[]> weights, Map<String, String> metadata) {
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(13)
        .inputSymbolic(INPUT, TensorProto.DataType.FLOAT, "batch", 1, FashionMnist.ROWS, FashionMnist.COLS);
    for (Param p : params) {
      b.initializer(p.name(), weights.get(p.name()), p.shape());
    }
    switch (this) {
      case CNN -> b
          .conv(INPUT, "conv1.weight", "conv1.bias", "conv1", 1)
          .relu("conv1", "relu1")
          .maxPool("relu1", "pool1", 2, 2)
          .conv("pool1", "conv2.weight", "conv2.bias", "conv2", 1)
          .relu("conv2", "relu2")
          .maxPool("relu2", "pool2", 2, 2)
          .flatten("pool2", "flat", 1)
          .gemm("flat", "fc1.weight", "fc1.bias", "fc1", true)
          .relu("fc1", "relu3")
          .gemm("relu3", "fc2.weight", "fc2.bias", OUTPUT, true);
      case MLP -> b
          .flatten(INPUT, "flat", 1)
          .gemm("flat", "fc1.weight", "fc1.bias", "fc1", true)
          .relu("fc1", "relu1")
          .gemm("relu1", "fc2.weight", "fc2.bias", "fc2", true)
          .relu("fc2", "relu2")
          .gemm("relu2", "fc3.weight", "fc3.bias", OUTPUT, true);
    }
    b.outputSymbolic(OUTPUT, TensorProto.DataType.FLOAT, "batch", FashionMnist.CLASSES);
    ModelProto.Builder model = b.build().toBuilder();
    model.getGraphBuilder().setName(baseName);
    metadata.forEach((k, val) -> model.addMetadataProps(StringStringEntryProto.newBuilder().setKey(k).setValue(val)));
    return model.build();
  }
}
