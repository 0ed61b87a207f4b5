package dev.modelpress.training;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.ClassifierNetwork;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Feature matching on an intermediate tensor: the teacher CNN's hidden layer {@code relu3} (64
 * values after fc1 + Relu), taken from ONNX Runtime by {@link TeacherOutputs}, is the target of a
 * cosine loss on the student's own {@code relu3} of the same width.
 */
class IntermediateTargetTest {

  @Test
  void cosineLossOnAnIntermediateTensorAlignsTheStudentsHiddenLayerWithTheTeachers() throws Exception {
    int n = 1_200;
    Map<String, SampleArray> teacher = TeacherOutputs.compute(Classifier.fashionCnn(), TrainingFixtures.ortInputs(0, n),
        List.of("relu3", ClassifierNetwork.OUTPUT), 400);
    assertThat(teacher.get("relu3").shape()).containsExactly(n, 64);
    assertThat(teacher.get(ClassifierNetwork.OUTPUT).shape()).containsExactly(n, 10);
    TrainingData data = new TrainingData(Map.of(ClassifierNetwork.INPUT, TrainingFixtures.images(0, n)), null,
        Map.of("relu3", teacher.get("relu3")));

    TrainingFixtures.StudentCnn student = new TrainingFixtures.StudentCnn(8, 16, 64);
    LossTerm cosine = new LossTerm.Cosine("relu3", "relu3", 1.0);
    TrainingResult r = Trainer.train(student.define(student.initialWeights(3)), data, TrainingConfig
        .builder(List.of(cosine)).epochs(3).batchSize(64).seed(2).learningRate(LearningRate.constant(2e-3))
        .validation(0.25, 0).build(), TrainingListener.NONE);
    double first = 1 - r.history().getFirst().validationLoss();
    double last = 1 - r.history().getLast().validationLoss();
    System.out.printf(Locale.ROOT, "cosine to the teacher's relu3 on held-out samples: %.4f after epoch 1, %.4f after 3%n",
        first, last);
    assertThat(r.metric()).isEqualTo("loss");
    assertThat(last).isGreaterThan(first);
    assertThat(last).isGreaterThan(0.8);
  }

  @Test
  void teacherTensorThatTheModelDoesNotComputeIsRejectedByName() {
    assertThatThrownBy(() -> TeacherOutputs.compute(Classifier.fashionCnn(), TrainingFixtures.ortInputs(0, 10),
        List.of("relu9"), 10))
        .isInstanceOf(EvaluationException.class).hasMessageContaining("'relu9'");
  }
}
