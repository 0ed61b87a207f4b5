package dev.modelpress.training;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.OnnxPipeline;
import dev.modelpress.compression.Progress;
import dev.modelpress.compression.PruneSpec;
import dev.modelpress.compression.QuantizeSpec;
import dev.modelpress.compression.quantize.QuantLayout;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.ClassifierNetwork;
import dev.modelpress.testing.FashionMnist;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 5's recovery criteria on the committed Fashion-MNIST CNN (89.48% on the 10,000 test
 * images): fine-tuning after 80% magnitude pruning with fixed masks, and 4-bit quantization-aware
 * training against 4-bit post-training quantization. Both fine-tune by distillation from the dense
 * fp32 model (its logits from ONNX Runtime) plus the labels, on a slice of the real training set;
 * every accuracy is measured in ONNX Runtime on the full test set.
 */
class FineTuneAcceptanceTest {

  static final int TRAIN = 4_000;

  static List<NdArray> test;
  static Path cnn;
  static ModelProto dense;
  static double denseAccuracy;
  static Map<String, SampleArray> teacher;

  @TempDir Path tmp;

  @BeforeAll
  static void load() throws Exception {
    test = FashionMnist.testSet(FashionMnist.TEST_SIZE);
    cnn = Classifier.fashionCnn();
    dense = OnnxModels.read(cnn);
    denseAccuracy = Classifier.accuracy(cnn, test);
    teacher = TeacherOutputs.compute(cnn, TrainingFixtures.ortInputs(0, TRAIN), List.of(ClassifierNetwork.OUTPUT), 500);
  }

  private static TrainingData data() {
    return new TrainingData(Map.of(ClassifierNetwork.INPUT, TrainingFixtures.images(0, TRAIN)),
        TrainingFixtures.labels(0, TRAIN), teacher);
  }

  private static TrainingConfig.Builder fineTune() {
    LossTerm kd = new LossTerm.Distillation(ClassifierNetwork.OUTPUT, ClassifierNetwork.OUTPUT, 0.5, 2);
    return TrainingConfig.builder(List.of(kd)).epochs(1).batchSize(64).seed(1)
        .learningRate(LearningRate.cosine(5e-4, 1e-5));
  }

  @Test
  void eightyPercentPrunedCnnFineTunedWithFixedMasksEndsWithinOnePointOfDenseWithTheSameZeros() {
    ModelProto pruned = OnnxPipeline.run(dense, List.of(PruneSpec.global(0.8)), Progress.NONE).model();
    Map<String, float[]> start = TrainingFixtures.initializers(pruned);
    double prunedAccuracy = TrainingFixtures.accuracy(pruned, tmp, "pruned", test);

    TrainingResult result = Trainer.train(TrainingFixtures.network(ClassifierNetwork.CNN, start), data(),
        fineTune().freezeZeros(true).build(), TrainingListener.NONE);
    Map<String, float[]> tuned = result.weightValues();
    double tunedAccuracy = TrainingFixtures.accuracy(ClassifierNetwork.CNN.toOnnx(tuned, Map.of()), tmp, "tuned", test);

    long zeros = 0;
    long selected = 0;
    for (String name : List.of("conv1.weight", "conv2.weight", "fc1.weight")) {
      float[] before = start.get(name);
      float[] after = tuned.get(name);
      for (int i = 0; i < before.length; i++) {
        if ((before[i] == 0f) != (after[i] == 0f)) {
          throw new AssertionError(name + "[" + i + "]: " + before[i] + " -> " + after[i]);
        }
      }
      zeros += TrainingFixtures.exactZeros(after);
      selected += after.length;
    }
    System.out.printf(Locale.ROOT, "80%% global magnitude pruning: dense %.4f, pruned %.4f, fine-tuned with fixed masks"
            + " %.4f (%d samples, 1 epoch); %d of %d selected weights zero (%.4f)%n", denseAccuracy, prunedAccuracy,
        tunedAccuracy, TRAIN, zeros, selected, (double) zeros / selected);
    assertThat((double) zeros / selected).isGreaterThanOrEqualTo(0.7999);
    assertThat(denseAccuracy - tunedAccuracy).isLessThanOrEqualTo(0.01);
    assertThat(tunedAccuracy).isGreaterThan(prunedAccuracy);
  }

  @Test
  void fourBitQuantizationAwareTrainingLosesLessThanFourBitPostTrainingQuantization() {
    QuantizeSpec int4 = QuantizeSpec.integer(4, true, QuantizeSpec.Granularity.CHANNEL, null,
        QuantizeSpec.RangeMethod.MINMAX);
    double ptqAccuracy = TrainingFixtures.accuracy(OnnxPipeline.run(dense, List.of(int4), Progress.NONE).model(), tmp,
        "ptq", test);

    TrainableGraph graph = TrainingFixtures.network(ClassifierNetwork.CNN, TrainingFixtures.initializers(dense));
    QuantizationAware qat = QuantizationAware.symmetric(dense, graph.trainable(), 4, QuantLayout.Mode.CHANNEL, 0);
    assertThat(qat.tensors().keySet()).containsExactlyInAnyOrder("conv1.weight", "conv2.weight", "fc1.weight",
        "fc2.weight");
    TrainingResult result = Trainer.train(graph, data(), fineTune().quantization(qat).build(), TrainingListener.NONE);
    Map<String, float[]> shadow = result.weightValues();

    // The caller's path: the shadow weights into ONNX, then the ordinary 4-bit quantize step.
    ModelProto qatQuantized = OnnxPipeline.run(ClassifierNetwork.CNN.toOnnx(shadow, Map.of()), List.of(int4),
        Progress.NONE).model();
    double qatAccuracy = TrainingFixtures.accuracy(qatQuantized, tmp, "qat", test);
    // The fake-quantized weights the network was trained through, as plain fp32: the same model.
    Map<String, float[]> fake = new java.util.LinkedHashMap<>(shadow);
    result.weights().forEach((name, w) -> {
      if (qat.tensors().containsKey(name)) {
        fake.put(name, qat.fakeQuantize(name, w.shape(), shadow.get(name)));
      }
    });
    Path fakeFile = TrainingFixtures.write(ClassifierNetwork.CNN.toOnnx(fake, Map.of()), tmp, "fake");
    Path qatFile = TrainingFixtures.write(qatQuantized, tmp, "qat-file");
    int[] a = Classifier.predictions(fakeFile, test);
    int[] b = Classifier.predictions(qatFile, test);
    int same = 0;
    for (int i = 0; i < a.length; i++) {
      same += a[i] == b[i] ? 1 : 0;
    }
    System.out.printf(Locale.ROOT, "4-bit symmetric per-channel: dense %.4f, post-training RTN %.4f (-%.2f points),"
            + " after QAT %.4f (-%.2f points; %d samples, 1 epoch); fake-quantized fp32 vs quantize step agree on %d"
            + " of 10000%n", denseAccuracy, ptqAccuracy, 100 * (denseAccuracy - ptqAccuracy), qatAccuracy,
        100 * (denseAccuracy - qatAccuracy), TRAIN, same);
    assertThat(same).isGreaterThanOrEqualTo(9_990);
    assertThat(denseAccuracy - qatAccuracy).isLessThan(denseAccuracy - ptqAccuracy);
  }
}
