package dev.modelpress.training;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.OnnxPipeline;
import dev.modelpress.compression.Progress;
import dev.modelpress.compression.PruneSpec;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 5's distillation criterion on the real Fashion-MNIST: a student with under a quarter of
 * the teacher's parameters, distilled from the teacher, reaches at least 97% of the teacher's test
 * accuracy and beats the same student trained for the same epochs on the same images with hard
 * labels only. Accuracy is measured in ONNX Runtime on all 10,000 test images.
 *
 * <p>The setting is the one distillation is for (Hinton et al. 2015): a small transfer set. The
 * teacher is the committed MLP ({@code fashion-mlp.onnx}, 784-256-128-10, 88.28%, trained on all
 * 60,000 training images); the student is derived from it exactly as the service's {@code distill}
 * step with {@code student.width: 0.27} derives one (structured L1 pruning keeps 27% of each
 * hidden layer's neurons with their weights: 784-69-35-10, 57,795 parameters, 24.6%; 40.6% before
 * training); both arms then see only the first 3,000 training images for 60 epochs (batch 500,
 * Adam, cosine 3e-3 to 1e-4). On so few images hard labels overfit (84.77-84.93% over seeds 1-3)
 * while the teacher's softened outputs (alpha 0.9, T 4) carry what it learned from the other
 * 57,000 images: 86.04-86.09% (97.5% of the teacher). Every setting tried, winning and losing, is
 * in docs/training.md ("Distillation vs labels").
 *
 * <p>The same holds with the committed CNN as the teacher ({@code fashion-cnn.onnx}, 89.48%): its
 * student derived with {@code width: 0.45} (22,819 parameters, 21.6%; 61.4% before training) on
 * the first 1,500 training images for 40 epochs (batch 250) reached 87.20% (97.5%) distilled vs
 * 86.28% from labels (seed 2). CNN training is not bit-reproducible here (ND4J's multithreaded
 * convolution backward pass moves results by up to 0.3 points), so that test asserts the same two
 * inequalities, whose margins (0.4 and 0.9 points) exceed that spread.
 */
class DistillationAcceptanceTest {

  /** A teacher, the width its student is derived with, and the budget both arms get. */
  record Setting(ClassifierNetwork network, double width, long studentParameters, int train, int epochs,
      int batch) {}

  static final double LEARNING_RATE = 3e-3;
  static final double ALPHA = 0.9;
  static final double TEMPERATURE = 4;

  static final Setting MLP_TEACHER = new Setting(ClassifierNetwork.MLP, 0.27, 57_795, 3_000,
      60, 500);
  static final Setting CNN_TEACHER = new Setting(ClassifierNetwork.CNN, 0.45, 22_819, 1_500,
      40, 250);

  @TempDir Path tmp;

  @Test
  void distilledQuarterSizeStudentReaches97PercentOfTheTeacherAndBeatsHardLabelTraining() throws Exception {
    compare(MLP_TEACHER, List.of(1L));
  }

  @Test
  void distilledStudentOfTheCnnTeacherReaches97PercentAndBeatsHardLabelTraining() throws Exception {
    compare(CNN_TEACHER, List.of(2L));
  }

  /** The MLP criterion for each of seeds 1, 2 and 3 (about four times the CPU time of the test above). */
  @Test
  @EnabledIfSystemProperty(named = "modelpress.training.fullBudget", matches = "true")
  void distillationWinsForEverySeed() throws Exception {
    compare(MLP_TEACHER, List.of(1L, 2L, 3L));
  }

  private void compare(Setting setting, List<Long> seeds) throws Exception {
    List<NdArray> test = FashionMnist.testSet(FashionMnist.TEST_SIZE);
    Path teacherFile = setting.network() == ClassifierNetwork.MLP ? Classifier.fashionMlp() : Classifier.fashionCnn();
    ModelProto teacherModel = OnnxModels.read(teacherFile);
    double teacherAccuracy = Classifier.accuracy(teacherFile, test);
    assertThat(teacherAccuracy).isEqualTo(setting.network() == ClassifierNetwork.MLP ? 0.8828 : 0.8948);

    ModelProto student = OnnxPipeline.run(teacherModel,
        List.of(PruneSpec.structured(1 - setting.width(), PruneSpec.Criterion.L1, PruneSpec.Target.CHANNELS)),
        Progress.NONE).model();
    long teacherParams = OnnxModels.summarize(teacherModel).parameterCount();
    long studentParams = OnnxModels.summarize(student).parameterCount();
    assertThat(teacherParams).isEqualTo(setting.network().parameterCount());
    assertThat(studentParams).isEqualTo(setting.studentParameters()).isLessThanOrEqualTo(teacherParams / 4);
    double untrained = TrainingFixtures.accuracy(student, tmp, "untrained", test);

    int train = setting.train();
    Map<String, SampleArray> teacher = TeacherOutputs.compute(teacherFile, TrainingFixtures.ortInputs(0, train),
        List.of(ClassifierNetwork.OUTPUT), 500);
    TrainingData data = new TrainingData(Map.of(ClassifierNetwork.INPUT, TrainingFixtures.images(0, train)),
        TrainingFixtures.labels(0, train), teacher);

    for (long seed : seeds) {
      long t0 = System.nanoTime();
      double distilled = train(setting, student, new LossTerm.Distillation(ClassifierNetwork.OUTPUT,
          ClassifierNetwork.OUTPUT, ALPHA, TEMPERATURE), data, seed, "distilled-" + seed, test);
      double seconds = (System.nanoTime() - t0) / 1e9;
      double hard = train(setting, student, new LossTerm.CrossEntropy(ClassifierNetwork.OUTPUT, 10), data, seed,
          "hard-" + seed, test);
      System.out.printf(Locale.ROOT, "distillation (%s teacher), seed %d: teacher %.4f (%d params), student %d params"
              + " (%.1f%%), untrained %.4f; %d images x %d epochs: distilled %.4f (%.1f%% of the teacher), hard labels"
              + " %.4f (%.1f%%); one student %.1f s%n",
          setting.network(), seed, teacherAccuracy, teacherParams, studentParams, 100.0 * studentParams / teacherParams,
          untrained, train, setting.epochs(), distilled, 100 * distilled / teacherAccuracy, hard,
          100 * hard / teacherAccuracy, seconds);
      assertThat(distilled).as("seed %d: distilled vs 97%% of the teacher", seed)
          .isGreaterThanOrEqualTo(0.97 * teacherAccuracy);
      assertThat(distilled).as("seed %d: distilled vs hard labels", seed).isGreaterThan(hard);
    }
  }

  private double train(Setting setting, ModelProto student, LossTerm loss, TrainingData data, long seed, String name,
      List<NdArray> test) {
    TrainingConfig config = TrainingConfig.builder(List.of(loss))
        .epochs(setting.epochs()).batchSize(setting.batch()).seed(seed)
        .learningRate(LearningRate.cosine(LEARNING_RATE, LEARNING_RATE / 30))
        .build();
    TrainingResult result = Trainer.train(OnnxTranslator.translate(student), data, config, TrainingListener.NONE);
    return TrainingFixtures.accuracy(OnnxTranslator.writeBack(student, result.weights()), tmp, name, test);
  }
}
