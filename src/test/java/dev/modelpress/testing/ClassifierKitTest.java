package dev.modelpress.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.modelpress.evaluation.ClassifierFidelity;
import dev.modelpress.evaluation.EvaluationOptions;
import dev.modelpress.evaluation.FidelityEvaluator;
import dev.modelpress.evaluation.FidelityReport;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.autodiff.samediff.SameDiff;

/** The committed Fashion-MNIST classifiers are what {@code docs/test-models.md} says they are. */
class ClassifierKitTest {

  /** Parameters of the CNN, as docs/test-models.md states them. */
  private static final long CNN_PARAMETERS = 105_866;

  /** Parameters of the MLP, as docs/test-models.md states them. */
  private static final long MLP_PARAMETERS = 235_146;

  @Test
  void committedCnnReachesAtLeast88PercentOnTheFullTestSetInOnnxRuntime() throws Exception {
    double accuracy = Classifier.accuracy(Classifier.fashionCnn(), FashionMnist.testSet(FashionMnist.TEST_SIZE));

    System.out.printf(Locale.ROOT, "fashion-cnn.onnx: Fashion-MNIST test accuracy %.4f in ONNX Runtime%n", accuracy);
    assertThat(accuracy).isGreaterThanOrEqualTo(0.88);
    // ONNX Runtime gets exactly as many test images right as SameDiff did when the trainer measured.
    assertThat(Math.round(accuracy * FashionMnist.TEST_SIZE)).isEqualTo(recordedCorrect(Classifier.fashionCnn()));
  }

  @Test
  void committedMlpReachesAtLeast88PercentOnTheFullTestSetInOnnxRuntime() throws Exception {
    double accuracy = Classifier.accuracy(Classifier.fashionMlp(), FashionMnist.testSet(FashionMnist.TEST_SIZE));

    System.out.printf(Locale.ROOT, "fashion-mlp.onnx: Fashion-MNIST test accuracy %.4f in ONNX Runtime%n", accuracy);
    assertThat(accuracy).isGreaterThanOrEqualTo(0.88);
    assertThat(Math.round(accuracy * FashionMnist.TEST_SIZE)).isEqualTo(recordedCorrect(Classifier.fashionMlp()));
  }

  @ParameterizedTest
  @EnumSource(ClassifierNetwork.class)
  void onnxRuntimeComputesTheSameLogitsAsTheSameDiffNetworkOverTheCommittedWeights(ClassifierNetwork network)
      throws Exception {
    Path model = Classifier.model(network);
    Map<String, float[]> weights = new LinkedHashMap<>();
    for (TensorProto t : OnnxModels.read(model).getGraph().getInitializerList()) {
      weights.put(t.getName(), OnnxTensors.toFloats(t));
    }
    float[] images = FashionMnist.testImages(1000);

    SameDiff sd = SameDiff.create();
    network.define(sd, weights);
    float[][] sameDiff = ClassifierTrainer.sameDiffLogits(sd, images);
    float[][] ort = Classifier.logits(model, FashionMnist.testSet(1000));

    double maxDiff = 0;
    double maxLogit = 0;
    int agree = 0;
    for (int i = 0; i < ort.length; i++) {
      assertThat(ort[i]).hasSize(10);
      for (int k = 0; k < 10; k++) {
        maxDiff = Math.max(maxDiff, Math.abs(ort[i][k] - sameDiff[i][k]));
        maxLogit = Math.max(maxLogit, Math.abs(ort[i][k]));
      }
      agree += Classifier.argMax(ort[i]) == Classifier.argMax(sameDiff[i]) ? 1 : 0;
    }
    // Logits reach tens; a transposed kernel or a wrong flatten order would move them by whole units.
    assertThat(maxLogit).isGreaterThan(5);
    assertThat(maxDiff).isLessThan(1e-4);
    assertThat(agree).isEqualTo(1000);
  }

  @Test
  void cnnIsAStandardOpset13GraphWithTheParameterCountTheDocsState() throws Exception {
    Path model = Classifier.fashionCnn();
    ModelProto proto = OnnxModels.read(model);
    ModelSummary summary = OnnxModels.summarize(proto);

    assertThat(summary.parameterCount()).isEqualTo(CNN_PARAMETERS).isEqualTo(ClassifierNetwork.CNN.parameterCount());
    assertThat(Files.readString(Path.of("docs/test-models.md"))).contains("105,866").contains("235,146");
    assertThat(Files.size(model)).isLessThan(500_000);
    assertThat(summary.opsets()).containsEntry("", 13L);
    assertThat(proto.getGraph().getNodeList().stream().map(NodeProto::getOpType))
        .containsExactly("Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm");
    assertThat(summary.inputs()).extracting(v -> v.name() + v.shape()).containsExactly("input[batch, 1, 28, 28]");
    assertThat(summary.outputs()).extracting(v -> v.name() + v.shape()).containsExactly("logits[batch, 10]");
    assertThat(summary.tensors()).extracting(t -> t.name() + t.shape()).containsExactly(
        "conv1.weight[16, 1, 3, 3]", "conv1.bias[16]", "conv2.weight[32, 16, 3, 3]", "conv2.bias[32]",
        "fc1.weight[64, 1568]", "fc1.bias[64]", "fc2.weight[10, 64]", "fc2.bias[10]");
  }

  @Test
  void mlpIsGemmOnlyWithTheParameterCountTheDocsState() throws Exception {
    ModelProto proto = OnnxModels.read(Classifier.fashionMlp());

    assertThat(OnnxModels.summarize(proto).parameterCount())
        .isEqualTo(MLP_PARAMETERS).isEqualTo(ClassifierNetwork.MLP.parameterCount());
    assertThat(proto.getGraph().getNodeList().stream().map(NodeProto::getOpType))
        .containsExactly("Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm");
  }

  @Test
  void fidelityEvaluatorReportsTheSameAccuracyAsAnIndependentRun() throws Exception {
    Path cnn = Classifier.fashionCnn();
    List<NdArray> testSet = FashionMnist.testSet(1000);
    double independent = Classifier.accuracy(cnn, testSet);

    FidelityReport report;
    try (FidelityEvaluator evaluator = new FidelityEvaluator()) {
      report = evaluator.compare(cnn, cnn, testSet, new EvaluationOptions(64, 1000, 0, 0));
    }

    assertThat(report.samples()).isEqualTo(1000);
    ClassifierFidelity classifier = report.output("logits").classifier();
    assertThat(classifier.classes()).isEqualTo(10);
    assertThat(classifier.originalAccuracy()).isCloseTo(independent, within(1e-12));
    assertThat(classifier.candidateAccuracy()).isCloseTo(independent, within(1e-12));
    assertThat(classifier.top1Agreement()).isEqualTo(1.0);
    assertThat(classifier.accuracyDeltaPoints()).isZero();
    // A real classifier on 1,000 real images: far above chance (10%), near the full-set figure.
    assertThat(independent).isBetween(0.85, 0.97);
  }

  @Test
  void predictionsAreTheArgMaxOfTheLogits() {
    List<NdArray> set = FashionMnist.testSet(50);
    float[][] logits = Classifier.logits(Classifier.fashionCnn(), set);
    int[] predicted = Classifier.predictions(Classifier.fashionCnn(), set);

    assertThat(predicted).hasSize(50);
    for (int i = 0; i < 50; i++) {
      for (float l : logits[i]) {
        assertThat(logits[i][predicted[i]]).isGreaterThanOrEqualTo(l);
      }
    }
    assertThat(Classifier.argMax(new float[] {1, 3, 3, 2})).isEqualTo(1);
    assertThat(Classifier.argMax(new float[] {1, Float.NaN})).isEqualTo(-1);
  }

  /** The count of correct test predictions the trainer measured in SameDiff and stored in the model. */
  private static long recordedCorrect(Path model) throws Exception {
    String value = OnnxModels.summarize(OnnxModels.read(model)).metadata().get(ClassifierNetwork.CORRECT_KEY);
    assertThat(value).as("metadata " + ClassifierNetwork.CORRECT_KEY).isNotNull();
    return Long.parseLong(value);
  }
}
