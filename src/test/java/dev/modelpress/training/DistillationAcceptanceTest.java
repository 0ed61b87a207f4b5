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
 */
class DistillationAcceptanceTest {

  static final double WIDTH = 0.27;
  static final int TRAIN = 3_000;
  static final int EPOCHS = 60;
  static final int BATCH = 500;
  static final double LEARNING_RATE = 3e-3;
  static final double ALPHA = 0.9;
  static final double TEMPERATURE = 4;

  @TempDir Path tmp;

  @Test
  void distilledQuarterSizeStudentReaches97PercentOfTheTeacherAndBeatsHardLabelTraining() throws Exception {
    compare(List.of(1L));
  }

  /** The same criterion for each of seeds 1, 2 and 3 (about four times the CPU time of the test above). */
  @Test
  @EnabledIfSystemProperty(named = "modelpress.training.fullBudget", matches = "true")
  void distillationWinsForEverySeed() throws Exception {
    compare(List.of(1L, 2L, 3L));
  }

  private void compare(List<Long> seeds) throws Exception {
    List<NdArray> test = FashionMnist.testSet(FashionMnist.TEST_SIZE);
    Path teacherFile = Classifier.fashionMlp();
    ModelProto teacherModel = OnnxModels.read(teacherFile);
    double teacherAccuracy = Classifier.accuracy(teacherFile, test);
    assertThat(teacherAccuracy).isEqualTo(0.8828);

    ModelProto student = OnnxPipeline.run(teacherModel,
        List.of(PruneSpec.structured(1 - WIDTH, PruneSpec.Criterion.L1, PruneSpec.Target.CHANNELS)), Progress.NONE)
        .model();
    long teacherParams = OnnxModels.summarize(teacherModel).parameterCount();
    long studentParams = OnnxModels.summarize(student).parameterCount();
    assertThat(teacherParams).isEqualTo(ClassifierNetwork.MLP.parameterCount());
    assertThat(studentParams).isEqualTo(57_795).isLessThanOrEqualTo(teacherParams / 4);
    double untrained = TrainingFixtures.accuracy(student, tmp, "untrained", test);

    Map<String, SampleArray> teacher = TeacherOutputs.compute(teacherFile, TrainingFixtures.ortInputs(0, TRAIN),
        List.of(ClassifierNetwork.OUTPUT), 500);
    TrainingData data = new TrainingData(Map.of(ClassifierNetwork.INPUT, TrainingFixtures.images(0, TRAIN)),
        TrainingFixtures.labels(0, TRAIN), teacher);

    for (long seed : seeds) {
      long t0 = System.nanoTime();
      double distilled = train(student, new LossTerm.Distillation(ClassifierNetwork.OUTPUT, ClassifierNetwork.OUTPUT,
          ALPHA, TEMPERATURE), data, seed, "distilled-" + seed, test);
      double seconds = (System.nanoTime() - t0) / 1e9;
      double hard = train(student, new LossTerm.CrossEntropy(ClassifierNetwork.OUTPUT, 10), data, seed, "hard-" + seed,
          test);
      System.out.printf(Locale.ROOT, "distillation, seed %d: teacher %.4f (%d params), student %d params (%.1f%%),"
              + " untrained %.4f; %d images x %d epochs: distilled %.4f (%.1f%% of the teacher), hard labels %.4f"
              + " (%.1f%%); one student %.1f s%n",
          seed, teacherAccuracy, teacherParams, studentParams, 100.0 * studentParams / teacherParams, untrained, TRAIN,
          EPOCHS, distilled, 100 * distilled / teacherAccuracy, hard, 100 * hard / teacherAccuracy, seconds);
      assertThat(distilled).as("seed %d: distilled vs 97%% of the teacher", seed)
          .isGreaterThanOrEqualTo(0.97 * teacherAccuracy);
      assertThat(distilled).as("seed %d: distilled vs hard labels", seed).isGreaterThan(hard);
    }
  }

  private double train(ModelProto student, LossTerm loss, TrainingData data, long seed, String name,
      List<NdArray> test) {
    TrainingConfig config = TrainingConfig.builder(List.of(loss))
        .epochs(EPOCHS).batchSize(BATCH).seed(seed)
        .learningRate(LearningRate.cosine(LEARNING_RATE, LEARNING_RATE / 30))
        .build();
    TrainingResult result = Trainer.train(OnnxTranslator.translate(student), data, config, TrainingListener.NONE);
    return TrainingFixtures.accuracy(OnnxTranslator.writeBack(student, result.weights()), tmp, name, test);
  }
}
