package dev.modelpress.training;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * DistilBERT's recipe on the real all-MiniLM-L6-v2: a 3-layer student made of the teacher's layers
 * 0, 2 and 4 (its embeddings and weights copied), distilled on the teacher's hidden states of real
 * sentences with the cosine loss, and measured on held-out sentences by the sentence embeddings
 * sentence-transformers computes (mean over real tokens, unit length) in ONNX Runtime.
 */
class DepthDistillationTest {

  /** Held-out sentences: the first 13 (the five paraphrase pairs among them); the other 50 train. */
  static final int HELD_OUT = 13;

  @TempDir Path dir;

  @Test
  void distillingTheThreeLayerStudentRaisesItsHeldOutCosineToTheTeacher() throws Exception {
    ModelProto teacher = OnnxModels.read(MiniLm.modelFile());
    ModelProto student = RemovableBlocks.keep(teacher, RemovableBlocks.find(teacher), List.of(0, 2, 4));
    List<String> sentences = MiniLm.sentences();
    List<NdArray> heldOut = MiniLm.encode(sentences.subList(0, HELD_OUT), 64);
    List<NdArray> train = MiniLm.encode(sentences.subList(HELD_OUT, sentences.size()), TRAIN_TOKENS);
    float[][] teacherHeldOut = MiniLm.sentenceEmbeddings(MiniLm.modelFile(), heldOut);
    double before = meanCosine(teacherHeldOut, MiniLm.sentenceEmbeddings(OnnxGraphBuilder.write(student, dir), heldOut));

    long started = System.nanoTime();
    Map<String, SampleArray> targets = TeacherOutputs.compute(MiniLm.modelFile(), train, List.of(MiniLm.OUTPUT), 64);
    Map<String, SampleArray> inputs = new LinkedHashMap<>();
    train.forEach(a -> inputs.put(a.name(), SampleArray.of(a)));
    TrainingData data = new TrainingData(inputs, null, Map.of("teacher", targets.get(MiniLm.OUTPUT)));
    TrainableGraph graph = OnnxTranslator.translate(student);
    long translated = System.nanoTime();
    int[] steps = {0};
    TrainingResult r = Trainer.train(graph, data, TrainingConfig.builder(List.of(
            new LossTerm.Cosine(MiniLm.OUTPUT, "teacher", 1.0)))
        .epochs(EPOCHS).batchSize(BATCH).seed(3).learningRate(LearningRate.constant(LEARNING_RATE)).build(),
        new TrainingListener() {
          @Override
          public void onStep(int epoch, int step, int of, double loss) {
            steps[0]++;
          }
        });
    double seconds = (System.nanoTime() - translated) / 1e9;
    ModelProto trained = OnnxTranslator.writeBack(student, r.weights());
    double after = meanCosine(teacherHeldOut, MiniLm.sentenceEmbeddings(OnnxGraphBuilder.write(trained, dir), heldOut));

    System.out.printf(Locale.ROOT, "3-layer MiniLM student: held-out sentence-embedding cosine %.4f untrained, %.4f "
            + "after %d epochs (%d steps of 25 sentences, %.1f s training, %.1f s teacher + translation); train loss "
            + "%.4f -> %.4f%n", before, after, EPOCHS, steps[0], seconds, (translated - started) / 1e9,
        r.history().getFirst().trainLoss(), r.history().getLast().trainLoss());
    assertThat(after).isGreaterThan(before + 0.1);
  }

  static final int EPOCHS = 4;
  static final int BATCH = 25;
  static final int TRAIN_TOKENS = 16;
  static final double LEARNING_RATE = 5e-4;

  private static double meanCosine(float[][] a, float[][] b) {
    double sum = 0;
    for (int i = 0; i < a.length; i++) {
      sum += MiniLm.cosine(a[i], b[i]);
    }
    return sum / a.length;
  }
}
