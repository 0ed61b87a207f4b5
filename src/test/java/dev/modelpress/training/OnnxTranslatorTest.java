package dev.modelpress.training;

import static dev.modelpress.testing.OnnxGraphBuilder.floatAttr;
import static dev.modelpress.testing.OnnxGraphBuilder.intAttr;
import static dev.modelpress.testing.OnnxGraphBuilder.intsAttr;
import static dev.modelpress.testing.OnnxGraphBuilder.randomFloats;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.modelpress.compression.CompressionException;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.ClassifierNetwork;
import dev.modelpress.testing.FashionMnist;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The translator on the committed real Fashion-MNIST classifiers (agreement with ONNX Runtime on
 * real test images, gradients for every weight, write-back), and its refusals.
 */
class OnnxTranslatorTest {

  private static final int IMAGES = 1000;

  @TempDir
  Path dir;

  @ParameterizedTest
  @EnumSource(ClassifierNetwork.class)
  void committedClassifierComputesTheSameLogitsAsOnnxRuntimeOnRealTestImages(ClassifierNetwork network)
      throws Exception {
    ModelProto model = OnnxModels.read(Classifier.model(network));

    TrainableGraph graph = OnnxTranslator.translate(model);

    assertThat(graph.inputs()).containsExactly(ClassifierNetwork.INPUT);
    assertThat(graph.outputs()).containsExactly(ClassifierNetwork.OUTPUT);
    assertThat(graph.trainable())
        .containsExactlyInAnyOrderElementsOf(network.params().stream().map(ClassifierNetwork.Param::name).toList());
    for (String name : graph.trainable()) {
      SDVariable v = graph.sameDiff().getVariable(name);
      assertThat(v.getVariableType()).isEqualTo(VariableType.VARIABLE);
      // The variable keeps the ONNX layout (a Conv weight stays [out, in, kh, kw]).
      assertThat(v.getArr().shape()).isEqualTo(param(network, name).shape());
    }
    INDArray images = Nd4j.create(FashionMnist.testImages(IMAGES), FashionMnist.imageShape(IMAGES), 'c');
    OrtAgreement.Result r = OrtAgreement.compare(model, graph, Map.of(ClassifierNetwork.INPUT, images), dir);
    System.out.printf(Locale.ROOT, "%s: %d logits of %d real test images, max error %.3g (max abs difference %.3g)%n",
        network.fileName(), r.elements(), IMAGES, r.maxError(), r.maxAbsDifference());
    assertThat(r.elements()).isEqualTo(IMAGES * 10L);
    assertThat(r.maxError()).isLessThan(1e-4);
  }

  @ParameterizedTest
  @EnumSource(ClassifierNetwork.class)
  void everyTrainableWeightOfTheClassifierGetsANonZeroGradient(ClassifierNetwork network) throws Exception {
    TrainableGraph graph = OnnxTranslator.translate(OnnxModels.read(Classifier.model(network)));
    INDArray images = Nd4j.create(FashionMnist.testImages(32), FashionMnist.imageShape(32), 'c');

    Map<String, INDArray> gradients = gradientsOfSumOfSquares(graph, Map.of(ClassifierNetwork.INPUT, images));

    assertNonZeroGradients(graph, gradients);
  }

  @Test
  void everyTrainableParameterGetsAGradientThroughConvBatchNormPoolingLayerNormGeluAndSoftmax() {
    float[] variance = randomFloats(14, 4, 0.5f);
    for (int i = 0; i < variance.length; i++) {
      variance[i] = Math.abs(variance[i]) + 0.5f;
    }
    ModelProto model = OnnxGraphBuilder.opset(20).irVersion(9)
        .inputSymbolic("x", TensorProto.DataType.FLOAT, "batch", 2, 6, 6)
        .initializer("conv.weight", randomFloats(10, 4 * 9, 0.5f), 4, 1, 3, 3)
        .initializer("conv.bias", randomFloats(11, 4, 0.1f), 4)
        .initializer("bn.scale", randomFloats(12, 4, 1f), 4)
        .initializer("bn.bias", randomFloats(13, 4, 1f), 4)
        .initializer("bn.mean", randomFloats(15, 4, 0.1f), 4)
        .initializer("bn.var", variance, 4)
        .initializer("fc.weight", randomFloats(16, 5 * 4, 1f), 5, 4)
        .initializer("fc.bias", randomFloats(17, 5, 0.1f), 5)
        .initializer("ln.scale", randomFloats(18, 5, 1f), 5)
        .initializer("ln.bias", randomFloats(19, 5, 0.1f), 5)
        .node("Conv", List.of("x", "conv.weight", "conv.bias"), List.of("c"), intAttr("group", 2),
            intsAttr("pads", 1, 1, 1, 1))
        .node("BatchNormalization", List.of("c", "bn.scale", "bn.bias", "bn.mean", "bn.var"), List.of("n"))
        .node("LeakyRelu", List.of("n"), List.of("a"), floatAttr("alpha", 0.1f))
        .node("MaxPool", List.of("a"), List.of("p"), intsAttr("kernel_shape", 2, 2), intsAttr("strides", 2, 2))
        .node("GlobalAveragePool", List.of("p"), List.of("g"))
        .flatten("g", "f", 1)
        .gemm("f", "fc.weight", "fc.bias", "h", true)
        .node("LayerNormalization", List.of("h", "ln.scale", "ln.bias"), List.of("l"))
        .node("Gelu", List.of("l"), List.of("e"))
        .node("Softmax", List.of("e"), List.of("y"))
        .output("y")
        .build();
    TrainableGraph graph = OnnxTranslator.translate(model);
    Map<String, INDArray> feeds = Map.of("x", Nd4j.create(randomFloats(20, 4 * 72, 1f), new long[] {4, 2, 6, 6}, 'c'));

    Map<String, INDArray> gradients = gradientsOfSumOfSquares(graph, feeds);

    assertThat(graph.trainable()).containsExactlyInAnyOrder(
        "conv.weight", "conv.bias", "bn.scale", "bn.bias", "fc.weight", "fc.bias", "ln.scale", "ln.bias");
    assertThat(graph.sameDiff().getVariable("bn.mean").getVariableType()).isEqualTo(VariableType.CONSTANT);
    assertNonZeroGradients(graph, gradients);
    // The gradients are the loss's derivatives: central differences agree on the largest entry of each.
    for (String name : graph.trainable()) {
      INDArray w = graph.sameDiff().getVariable(name).getArr();
      long i = gradients.get(name).reshape(w.length()).argMax().getLong(0);
      float saved = w.reshape(w.length()).getFloat(i);
      double h = 1e-2;
      w.reshape(w.length()).putScalar(i, saved + h);
      double up = loss(graph, feeds);
      w.reshape(w.length()).putScalar(i, saved - h);
      double down = loss(graph, feeds);
      w.reshape(w.length()).putScalar(i, saved);
      double numeric = (up - down) / (2 * h);
      double analytic = gradients.get(name).reshape(w.length()).getDouble(i);
      assertThat(numeric).as(name + "[" + i + "]").isCloseTo(analytic, within(0.05 * Math.abs(analytic) + 1e-3));
    }
  }

  private static double loss(TrainableGraph graph, Map<String, INDArray> feeds) {
    return graph.sameDiff().output(feeds, "loss").get("loss").getDouble(0);
  }

  @Test
  void embeddingTableGradientsSumOverRepeatedIndicesAcrossSeveralLookups() {
    ModelProto model = OnnxGraphBuilder.opset(13)
        .inputSymbolic("ids", TensorProto.DataType.INT64, "batch", "seq")
        .inputSymbolic("types", TensorProto.DataType.INT64, "batch", "seq")
        .initializer("words", randomFloats(1, 5 * 3, 1f), 5, 3)
        .initializer("kinds", randomFloats(2, 2 * 3, 1f), 2, 3)
        .gather("words", "ids", "w")
        .gather("kinds", "types", "k")
        .add("w", "k", "y")
        .output("y")
        .build();
    TrainableGraph graph = OnnxTranslator.translate(model);
    long[][] ids = {{0, 0, 2, 4}, {2, 1, 0, 0}};
    Map<String, INDArray> feeds = Map.of(
        "ids", Nd4j.createFromArray(ids), "types", Nd4j.zeros(DataType.LONG, 2, 4));
    INDArray weights = Nd4j.create(randomFloats(3, 2 * 4 * 3, 1f), new long[] {2, 4, 3}, 'c');
    SameDiff sd = graph.sameDiff();
    sd.setLossVariables(sd.sum("loss", graph.value("y").mul(sd.constant(weights))));

    Map<String, INDArray> gradients = sd.calculateGradients(feeds, graph.trainable());

    // d loss / d words[r] is the sum of the weights at every position reading row r.
    INDArray expectedWords = Nd4j.zeros(DataType.FLOAT, 5, 3);
    for (int b = 0; b < 2; b++) {
      for (int s = 0; s < 4; s++) {
        expectedWords.getRow(ids[b][s]).addi(weights.slice(b).getRow(s));
      }
    }
    assertThat(gradients.get("words").equalsWithEps(expectedWords, 1e-5)).isTrue();
    // Every position reads kinds[0]: its gradient is the sum of all 8 weight rows, kinds[1] gets none.
    assertThat(gradients.get("kinds").getRow(0).equalsWithEps(weights.reshape(8, 3).sum(0), 1e-5)).isTrue();
    assertThat(gradients.get("kinds").getRow(1).sumNumber().doubleValue()).isZero();
  }

  @Test
  void chosenTrainableSetMakesOnlyThoseInitializersVariables() throws Exception {
    ModelProto model = OnnxModels.read(Classifier.fashionMlp());

    TrainableGraph graph = OnnxTranslator.translate(model, Set.of("fc3.weight", "fc3.bias"));

    assertThat(graph.trainable()).containsExactlyInAnyOrder("fc3.weight", "fc3.bias");
    assertThat(graph.sameDiff().getVariable("fc1.weight").getVariableType()).isEqualTo(VariableType.CONSTANT);
    assertThat(graph.weights()).containsOnlyKeys("fc3.weight", "fc3.bias");
    assertThatThrownBy(() -> OnnxTranslator.translate(model, Set.of("no.such.tensor")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'no.such.tensor' is not a FLOAT initializer");
  }

  @Test
  void writtenBackWeightsRunInOnnxRuntimeExactlyAsSameDiffComputesThem() throws Exception {
    ModelProto original = OnnxModels.read(Classifier.fashionCnn());
    TrainableGraph graph = OnnxTranslator.translate(original);
    // Unchanged weights write back to the very same bytes: nothing else in the model is touched.
    assertThat(OnnxTranslator.writeBack(original, graph.weights()).toByteString()).isEqualTo(original.toByteString());

    // "Training": perturb every weight in place, as an optimizer updates the live arrays.
    long seed = 40;
    for (INDArray w : graph.weights().values()) {
      INDArray noise = Nd4j.create(randomFloats(seed++, (int) w.length(), 0.05f), w.shape(), 'c');
      w.muli(1.2).addi(noise);
    }
    ModelProto trained = OnnxTranslator.writeBack(original, graph.weights());
    INDArray images = Nd4j.create(FashionMnist.testImages(200), FashionMnist.imageShape(200), 'c');

    OrtAgreement.Result r = OrtAgreement.compare(trained, graph, Map.of(ClassifierNetwork.INPUT, images), dir);
    System.out.printf(Locale.ROOT, "write-back: ONNX Runtime on the trained model vs SameDiff, max error %.3g%n",
        r.maxError());
    assertThat(r.maxError()).isLessThan(1e-4);
    // ... and the new weights really changed what the model computes.
    float[] before = ortLogits(original, images);
    float[] after = ortLogits(trained, images);
    double largest = 0;
    for (int i = 0; i < before.length; i++) {
      largest = Math.max(largest, Math.abs(before[i] - after[i]));
    }
    assertThat(largest).isGreaterThan(0.5);
    // Names, dims, element types, nodes, inputs, outputs and metadata are those of the original.
    assertThat(withoutInitializerData(trained)).isEqualTo(withoutInitializerData(original));
  }

  @Test
  void writeBackRefusesWrongShapesUnknownNamesAndNonFiniteValues() throws Exception {
    ModelProto original = OnnxModels.read(Classifier.fashionMlp());

    assertThatThrownBy(() -> OnnxTranslator.writeBack(original, Map.of("fc3.bias", Nd4j.zeros(DataType.FLOAT, 11))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'fc3.bias' have shape [11], the initializer [10]");
    assertThatThrownBy(() -> OnnxTranslator.writeBack(original, Map.of("fc9.bias", Nd4j.zeros(DataType.FLOAT, 10))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("no initializers named [fc9.bias]");
    INDArray diverged = Nd4j.zeros(DataType.FLOAT, 10);
    diverged.putScalar(3, Float.NaN);
    assertThatThrownBy(() -> OnnxTranslator.writeBack(original, Map.of("fc3.bias", diverged)))
        .isInstanceOf(CompressionException.class)
        .hasMessage("training left a non-finite value (NaN) in 'fc3.bias'");
  }

  @Test
  void unsupportedOperatorsAreListedWithEveryNodeUsingThem() {
    GraphProto.Builder graph = OnnxGraphBuilder.opset(13).input("x", 1, 4, 8).build().getGraph().toBuilder();
    graph.addNode(node("LSTM", "lstm_1", "", "x", "h1"));
    graph.addNode(node("Relu", "act", "", "h1", "a"));
    graph.addNode(node("LSTM", "lstm_2", "", "a", "h2"));
    graph.addNode(node("Resize", "up", "", "h2", "u"));
    graph.addNode(node("FusedMatMul", "", "com.microsoft", "u", "fused"));
    ModelProto model = OnnxGraphBuilder.opset(13).build().toBuilder().setGraph(graph).build();

    List<OnnxTranslator.UnsupportedOperator> unsupported = OnnxTranslator.unsupported(model);

    assertThat(unsupported).containsExactly(
        new OnnxTranslator.UnsupportedOperator("LSTM", List.of("lstm_1", "lstm_2")),
        new OnnxTranslator.UnsupportedOperator("Resize", List.of("up")),
        new OnnxTranslator.UnsupportedOperator("com.microsoft.FusedMatMul", List.of("producing 'fused'")));
    String expected = "unsupported operators: LSTM (nodes lstm_1, lstm_2), Resize (node up),"
        + " com.microsoft.FusedMatMul (node producing 'fused')";
    assertThat(OnnxTranslator.describe(unsupported)).isEqualTo(expected);
    assertThatThrownBy(() -> OnnxTranslator.translate(model))
        .isInstanceOf(CompressionException.class)
        .hasMessage(expected);
  }

  @Test
  void supportedModelsHaveNoUnsupportedOperators() throws Exception {
    assertThat(OnnxTranslator.unsupported(OnnxModels.read(Classifier.fashionCnn()))).isEmpty();
    assertThat(OnnxTranslator.supportedOperators()).contains("Gemm", "Conv", "BatchNormalization", "LayerNormalization",
        "Gelu", "Softmax", "Dropout").doesNotContain("LSTM");
  }

  @Test
  void aSupportedOperatorWithAnUnsupportedFormNamesTheNodeAndTheReason() {
    ModelProto conv3d = OnnxGraphBuilder.opset(13)
        .input("x", 1, 1, 4, 4, 4)
        .initializer("W", randomFloats(1, 8, 1f), 1, 1, 2, 2, 2)
        .node("Conv", List.of("x", "W"), List.of("y"))
        .output("y")
        .build();
    ModelProto ceil = OnnxGraphBuilder.opset(13)
        .input("x", 1, 1, 5, 5)
        .node("MaxPool", List.of("x"), List.of("y"), intsAttr("kernel_shape", 2, 2), intsAttr("strides", 2, 2),
            intAttr("ceil_mode", 1))
        .output("y")
        .build();

    assertThatThrownBy(() -> OnnxTranslator.translate(conv3d))
        .isInstanceOf(CompressionException.class)
        .hasMessage("cannot translate node Conv_0 (Conv): its input X (only 2-D convolutions are supported) must"
            + " have rank 4, has rank 5");
    assertThatThrownBy(() -> OnnxTranslator.translate(ceil))
        .isInstanceOf(CompressionException.class)
        .hasMessage("cannot translate node MaxPool_0 (MaxPool): ceil_mode = 1 is not supported");
  }

  @Test
  void aNodeReadingAValueNothingProducesIsRefusedByName() {
    ModelProto model = OnnxGraphBuilder.opset(13)
        .input("x", 1, 4)
        .relu("ghost", "y")
        .output("y")
        .build();

    assertThatThrownBy(() -> OnnxTranslator.translate(model))
        .isInstanceOf(CompressionException.class)
        .hasMessage("node Relu_0 reads 'ghost', which no node, input or initializer provides");
  }

  private static Map<String, INDArray> gradientsOfSumOfSquares(TrainableGraph graph, Map<String, INDArray> feeds) {
    SameDiff sd = graph.sameDiff();
    SDVariable out = graph.value(graph.outputs().getFirst());
    SDVariable loss = sd.sum("loss", out.mul(out));
    sd.setLossVariables(loss);
    return sd.calculateGradients(feeds, graph.trainable());
  }

  private static void assertNonZeroGradients(TrainableGraph graph, Map<String, INDArray> gradients) {
    assertThat(gradients.keySet()).containsExactlyInAnyOrderElementsOf(graph.trainable());
    Map<String, Double> norms = new HashMap<>();
    for (String name : graph.trainable()) {
      INDArray g = gradients.get(name);
      assertThat(g).as(name).isNotNull();
      assertThat(g.shape()).as(name).isEqualTo(graph.weights().get(name).shape());
      norms.put(name, g.norm2Number().doubleValue());
    }
    System.out.println("gradient norms: " + norms);
    assertThat(norms.values()).allSatisfy(n -> assertThat(n).isGreaterThan(0).isFinite());
  }

  private float[] ortLogits(ModelProto model, INDArray images) {
    try (OrtRunner ort = new OrtRunner(OnnxGraphBuilder.write(model, dir))) {
      return ort.run(ClassifierNetwork.OUTPUT, Map.of(ClassifierNetwork.INPUT, OrtAgreement.input(images)));
    }
  }

  private static ModelProto withoutInitializerData(ModelProto model) {
    ModelProto.Builder b = model.toBuilder();
    for (TensorProto.Builder t : b.getGraphBuilder().getInitializerBuilderList()) {
      t.clearRawData().clearFloatData();
    }
    return b.build();
  }

  private static ClassifierNetwork.Param param(ClassifierNetwork network, String name) {
    Map<String, ClassifierNetwork.Param> byName = new LinkedHashMap<>();
    network.params().forEach(p -> byName.put(p.name(), p));
    return byName.get(name);
  }

  private static NodeProto node(String op, String name, String domain, String in, String out) {
    return NodeProto.newBuilder().setOpType(op).setName(name).setDomain(domain).addInput(in).addOutput(out).build();
  }
}
