package dev.modelpress.training;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.NdArray;
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
 * Issue 5's distillation criterion on the real Fashion-MNIST: the committed CNN (89.48% on the
 * 10,000 test images) teaches a student with under a quarter of its parameters (25,108: 23.7%);
 * accuracy is measured in ONNX Runtime on the student's ONNX twin holding the trained weights.
 *
 * <p>At this test-sized budget (10,000 images, 3 epochs; SameDiff's CPU conv backprop costs about
 * 2.5 ms a sample) the distilled student reaches 84.75% (94.7% of the teacher) against 84.38% from
 * hard labels alone, same seed: distillation wins, but the 97% of the teacher (86.8%) needs
 * a larger budget, so this test asserts the 94% it reaches. {@link
 * #distilledStudentReaches97PercentOfTheTeacherWithTheFullBudget} runs that budget (30,000 images,
 * 4 epochs: 88.02%, 98.4% of the teacher; about 300 s of CPU) when
 * {@code -Dmodelpress.training.fullBudget=true} is given.
 */
class DistillationAcceptanceTest {

  static final int TRAIN = 10_000;
  static final int EPOCHS = 3;
  static final long SEED = 5;
  static final TrainingFixtures.StudentCnn STUDENT = new TrainingFixtures.StudentCnn(8, 16, 30);

  @TempDir Path tmp;

  @Test
  void distilledQuarterSizeStudentBeatsHardLabelTrainingOfTheSameStudent() throws Exception {
    List<NdArray> test = FashionMnist.testSet(FashionMnist.TEST_SIZE);
    Path teacherFile = Classifier.fashionCnn();
    double teacherAccuracy = Classifier.accuracy(teacherFile, test);
    assertThat(STUDENT.parameterCount()).isLessThanOrEqualTo(ClassifierNetwork.CNN.parameterCount() / 4);

    long t0 = System.nanoTime();
    Map<String, SampleArray> teacher = TeacherOutputs.compute(teacherFile, TrainingFixtures.ortInputs(0, TRAIN),
        List.of(ClassifierNetwork.OUTPUT), 500);
    double teacherSeconds = (System.nanoTime() - t0) / 1e9;
    assertThat(teacher.get(ClassifierNetwork.OUTPUT).shape()).containsExactly(TRAIN, 10);

    TrainingData data = new TrainingData(Map.of(ClassifierNetwork.INPUT, TrainingFixtures.images(0, TRAIN)),
        TrainingFixtures.labels(0, TRAIN), teacher);

    long t1 = System.nanoTime();
    double distilled = trainStudent(new LossTerm.Distillation(ClassifierNetwork.OUTPUT, ClassifierNetwork.OUTPUT, 0.5, 2),
        data, "distilled");
    double distillSeconds = (System.nanoTime() - t1) / 1e9;
    double hard = trainStudent(new LossTerm.CrossEntropy(ClassifierNetwork.OUTPUT, 10), data, "hard");

    System.out.printf(Locale.ROOT, "distillation: teacher %.4f (%d params), student %d params (%.1f%%), %d samples x %d"
            + " epochs: distilled %.4f (%.1f%% of teacher), hard labels %.4f; teacher logits %.1f s, one student %.1f s%n",
        teacherAccuracy, ClassifierNetwork.CNN.parameterCount(), STUDENT.parameterCount(),
        100.0 * STUDENT.parameterCount() / ClassifierNetwork.CNN.parameterCount(), TRAIN, EPOCHS, distilled,
        100 * distilled / teacherAccuracy, hard, teacherSeconds, distillSeconds);
    assertThat(distilled).isGreaterThanOrEqualTo(0.94 * teacherAccuracy);
    assertThat(distilled).isGreaterThan(hard);
  }

  @Test
  @EnabledIfSystemProperty(named = "modelpress.training.fullBudget", matches = "true")
  void distilledStudentReaches97PercentOfTheTeacherWithTheFullBudget() throws Exception {
    int train = 30_000;
    Path teacherFile = Classifier.fashionCnn();
    double teacherAccuracy = Classifier.accuracy(teacherFile, FashionMnist.testSet(FashionMnist.TEST_SIZE));
    Map<String, SampleArray> teacher = TeacherOutputs.compute(teacherFile, TrainingFixtures.ortInputs(0, train),
        List.of(ClassifierNetwork.OUTPUT), 500);
    TrainingData data = new TrainingData(Map.of(ClassifierNetwork.INPUT, TrainingFixtures.images(0, train)),
        TrainingFixtures.labels(0, train), teacher);
    double distilled = trainStudent(new LossTerm.Distillation(ClassifierNetwork.OUTPUT, ClassifierNetwork.OUTPUT, 0.5, 2),
        data, "distilled-full", 4);
    System.out.printf(Locale.ROOT, "distillation, full budget (%d samples x 4 epochs): %.4f (%.1f%% of the teacher)%n",
        train, distilled, 100 * distilled / teacherAccuracy);
    assertThat(distilled).isGreaterThanOrEqualTo(0.97 * teacherAccuracy);
  }

  private double trainStudent(LossTerm loss, TrainingData data, String name) {
    return trainStudent(loss, data, name, EPOCHS);
  }

  private double trainStudent(LossTerm loss, TrainingData data, String name, int epochs) {
    TrainableGraph graph = STUDENT.define(STUDENT.initialWeights(SEED));
    TrainingConfig config = TrainingConfig.builder(List.of(loss))
        .epochs(epochs).batchSize(128).seed(SEED)
        .learningRate(LearningRate.cosine(4e-3, 4e-3 / 30).withWarmup(20))
        .build();
    TrainingResult result = Trainer.train(graph, data, config, TrainingListener.NONE);
    System.out.printf(Locale.ROOT, "%s: train loss by epoch %s%n", name,
        result.history().stream().map(s -> String.format(Locale.ROOT, "%.4f", s.trainLoss())).toList());
    return TrainingFixtures.accuracy(STUDENT.toOnnx(result.weightValues()), tmp, name,
        FashionMnist.testSet(FashionMnist.TEST_SIZE));
  }
}
