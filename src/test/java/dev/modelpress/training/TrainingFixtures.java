package dev.modelpress.training;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.ClassifierNetwork;
import dev.modelpress.testing.FashionMnist;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
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
 * Trainable graphs for the trainer's tests until the ONNX translator lands: the test kit's
 * {@link ClassifierNetwork}s and a narrower {@link StudentCnn}, each as a SameDiff graph whose
 * variables are named like the ONNX initializers, with its ONNX twin to measure accuracy in ONNX
 * Runtime.
 */
final class TrainingFixtures {

  private TrainingFixtures() {}

  /** A test-kit network over {@code weights} as a {@link TrainableGraph}. */
  static TrainableGraph network(ClassifierNetwork network, Map<String, float[]> weights) {
    SameDiff sd = SameDiff.create();
    SDVariable logits = network.define(sd, weights);
    Map<String, SDVariable> values = new LinkedHashMap<>();
    values.put(ClassifierNetwork.INPUT, sd.getVariable(ClassifierNetwork.INPUT));
    values.put(ClassifierNetwork.OUTPUT, logits);
    for (ClassifierNetwork.Param p : network.params()) {
      values.put(p.name(), sd.getVariable(p.name()));
    }
    return new TrainableGraph(sd, List.of(ClassifierNetwork.INPUT), List.of(ClassifierNetwork.OUTPUT),
        network.params().stream().map(ClassifierNetwork.Param::name).collect(java.util.stream.Collectors.toSet()),
        values);
  }

  /** Every float initializer of an ONNX file, by name. */
  static Map<String, float[]> initializers(Path onnx) {
    try {
      return initializers(OnnxModels.read(onnx));
    } catch (FormatException e) {
      throw new IllegalStateException(e);
    }
  }

  static Map<String, float[]> initializers(ModelProto model) {
    Map<String, float[]> out = new LinkedHashMap<>();
    for (TensorProto t : model.getGraph().getInitializerList()) {
      out.put(t.getName(), OnnxTensors.toFloats(t));
    }
    return out;
  }

  /** Accuracy of {@code model} on the test images (all of {@code test}) in ONNX Runtime. */
  static double accuracy(ModelProto model, Path dir, String name, List<NdArray> test) {
    try {
      Path file = dir.resolve(name + ".onnx");
      OnnxModels.write(model, file);
      return Classifier.accuracy(file, test);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static Path write(ModelProto model, Path dir, String name) {
    try {
      Path file = dir.resolve(name + ".onnx");
      OnnxModels.write(model, file);
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Training images {@code [from, from + n)} as the {@value ClassifierNetwork#INPUT} array. */
  static SampleArray images(int from, int n) {
    return new SampleArray(FashionMnist.images(FashionMnist.Split.TRAIN, from, n), FashionMnist.imageShape(n));
  }

  static long[] labels(int from, int n) {
    return FashionMnist.labels(FashionMnist.Split.TRAIN, from, n);
  }

  /** The same images as an {@link NdArray} for ONNX Runtime. */
  static List<NdArray> ortInputs(int from, int n) {
    return List.of(FashionMnist.dataset(FashionMnist.Split.TRAIN, from, n).getFirst());
  }

  static long exactZeros(float[] values) {
    long z = 0;
    for (float v : values) {
      z += v == 0f ? 1 : 0;
    }
    return z;
  }

  /**
   * Conv(1→c1, 3x3, pad 1) + Relu + MaxPool 2 → Conv(c1→c2, 3x3, pad 1) + Relu + MaxPool 2 → Flatten
   * → Gemm(c2·49→hidden) + Relu → Gemm(hidden→10): the teacher's shape, narrower.
   */
  record StudentCnn(int c1, int c2, int hidden) {

    List<ClassifierNetwork.Param> params() {
      return List.of(
          new ClassifierNetwork.Param("conv1.weight", c1, 1, 3, 3),
          new ClassifierNetwork.Param("conv1.bias", c1),
          new ClassifierNetwork.Param("conv2.weight", c2, c1, 3, 3),
          new ClassifierNetwork.Param("conv2.bias", c2),
          new ClassifierNetwork.Param("fc1.weight", hidden, c2 * 49L),
          new ClassifierNetwork.Param("fc1.bias", hidden),
          new ClassifierNetwork.Param("fc2.weight", 10, hidden),
          new ClassifierNetwork.Param("fc2.bias", 10));
    }

    long parameterCount() {
      return params().stream().mapToLong(ClassifierNetwork.Param::size).sum();
    }

    /** He-uniform weights, zero biases, from {@code Random(seed)} in parameter order. */
    Map<String, float[]> initialWeights(long seed) {
      Random random = new Random(seed);
      Map<String, float[]> out = new LinkedHashMap<>();
      for (ClassifierNetwork.Param p : params()) {
        float[] v = new float[p.size()];
        if (p.shape().length > 1) {
          double bound = Math.sqrt(6.0 * p.shape()[0] / p.size());
          for (int i = 0; i < v.length; i++) {
            v[i] = (float) ((random.nextDouble() * 2 - 1) * bound);
          }
        }
        out.put(p.name(), v);
      }
      return out;
    }

    /** The SameDiff graph; {@code values} also holds the intermediate tensor {@code relu3} (the hidden layer). */
    TrainableGraph define(Map<String, float[]> weights) {
      SameDiff sd = SameDiff.create();
      SDVariable x = sd.placeHolder(ClassifierNetwork.INPUT, DataType.FLOAT, -1, 1, 28, 28);
      Map<String, SDVariable> values = new LinkedHashMap<>();
      values.put(ClassifierNetwork.INPUT, x);
      for (ClassifierNetwork.Param p : params()) {
        values.put(p.name(), sd.var(p.name(), Nd4j.create(weights.get(p.name()), p.shape(), 'c')));
      }
      SDVariable h = pool(sd, sd.nn().relu(conv(sd, x, values.get("conv1.weight"), values.get("conv1.bias")), 0));
      h = pool(sd, sd.nn().relu(conv(sd, h, values.get("conv2.weight"), values.get("conv2.bias")), 0));
      h = sd.reshape(h, -1, c2 * 49L);
      SDVariable hidden = sd.nn().relu(sd.mmul(h, values.get("fc1.weight"), false, true, false)
          .add(values.get("fc1.bias")), 0);
      values.put("relu3", hidden);
      SDVariable logits = sd.identity(ClassifierNetwork.OUTPUT,
          sd.mmul(hidden, values.get("fc2.weight"), false, true, false).add(values.get("fc2.bias")));
      values.put(ClassifierNetwork.OUTPUT, logits);
      return new TrainableGraph(sd, List.of(ClassifierNetwork.INPUT), List.of(ClassifierNetwork.OUTPUT),
          params().stream().map(ClassifierNetwork.Param::name).collect(java.util.stream.Collectors.toSet()), values);
    }

    /** The ONNX twin (opset 13), same node names as the test kit's CNN. */
    ModelProto toOnnx(Map<String, float[]> weights) {
      OnnxGraphBuilder b = OnnxGraphBuilder.opset(13)
          .inputSymbolic(ClassifierNetwork.INPUT, TensorProto.DataType.FLOAT, "batch", 1, 28, 28);
      for (ClassifierNetwork.Param p : params()) {
        b.initializer(p.name(), weights.get(p.name()), p.shape());
      }
      b.conv(ClassifierNetwork.INPUT, "conv1.weight", "conv1.bias", "conv1", 1)
          .relu("conv1", "relu1")
          .maxPool("relu1", "pool1", 2, 2)
          .conv("pool1", "conv2.weight", "conv2.bias", "conv2", 1)
          .relu("conv2", "relu2")
          .maxPool("relu2", "pool2", 2, 2)
          .flatten("pool2", "flat", 1)
          .gemm("flat", "fc1.weight", "fc1.bias", "fc1", true)
          .relu("fc1", "relu3")
          .gemm("relu3", "fc2.weight", "fc2.bias", ClassifierNetwork.OUTPUT, true)
          .outputSymbolic(ClassifierNetwork.OUTPUT, TensorProto.DataType.FLOAT, "batch", 10);
      return b.build();
    }

    private static SDVariable conv(SameDiff sd, SDVariable x, SDVariable w, SDVariable bias) {
      Conv2DConfig config = Conv2DConfig.builder().kH(3).kW(3).sH(1).sW(1).pH(1).pW(1).dH(1).dW(1)
          .dataFormat(Conv2DConfig.NCHW).build();
      return sd.cnn().conv2d(x, sd.permute(w, 2, 3, 1, 0), bias, config);
    }

    private static SDVariable pool(SameDiff sd, SDVariable x) {
      return sd.cnn().maxPooling2d(x, Pooling2DConfig.builder().kH(2).kW(2).sH(2).sW(2).isNHWC(false).build());
    }
  }
}
