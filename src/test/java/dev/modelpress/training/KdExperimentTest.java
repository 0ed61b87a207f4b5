package dev.modelpress.training;

import dev.modelpress.compression.OnnxPipeline;
import dev.modelpress.compression.Progress;
import dev.modelpress.compression.PruneSpec;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.ClassifierNetwork;
import dev.modelpress.testing.FashionMnist;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * The experiment harness behind docs/training.md, "Distillation vs labels": trains a student with
 * labels only and with distillation losses on the same Fashion-MNIST images, epochs and seeds, and
 * prints each arm's test accuracy (ONNX Runtime, 10,000 images) as a {@code KDEXP} line. Skipped
 * unless {@code -Dkd.run=true}; the properties are listed in that section of the docs.
 */
@EnabledIfSystemProperty(named = "kd.run", matches = "true")
class KdExperimentTest {
  @TempDir Path tmp;

  static ModelProto mlp(int hidden, long seed) {
    Random r = new Random(seed);
    float[] w1 = new float[hidden * 784];
    float[] w2 = new float[10 * hidden];
    double b1 = Math.sqrt(6.0 / 784), b2 = Math.sqrt(6.0 / hidden);
    for (int i = 0; i < w1.length; i++) w1[i] = (float) ((r.nextDouble() * 2 - 1) * b1);
    for (int i = 0; i < w2.length; i++) w2[i] = (float) ((r.nextDouble() * 2 - 1) * b2);
    return OnnxGraphBuilder.opset(13)
        .inputSymbolic(ClassifierNetwork.INPUT, TensorProto.DataType.FLOAT, "batch", 1, 28, 28)
        .initializer("fc1.weight", w1, hidden, 784).initializer("fc1.bias", new float[hidden], hidden)
        .initializer("fc2.weight", w2, 10, hidden).initializer("fc2.bias", new float[10], 10)
        .flatten(ClassifierNetwork.INPUT, "flat", 1)
        .gemm("flat", "fc1.weight", "fc1.bias", "fc1", true)
        .relu("fc1", "relu1")
        .gemm("relu1", "fc2.weight", "fc2.bias", ClassifierNetwork.OUTPUT, true)
        .outputSymbolic(ClassifierNetwork.OUTPUT, TensorProto.DataType.FLOAT, "batch", 10).build();
  }

  static long params(ModelProto m) {
    long n = 0;
    for (TensorProto t : m.getGraph().getInitializerList()) {
      long e = 1;
      for (long d : t.getDimsList()) e *= d;
      n += e;
    }
    return n;
  }

  @Test
  void experiment() throws Exception {
    // kd.grid: ';'-separated "train:epochs:batch:lr:losses(+-separated)" settings run in one JVM
    String grid = System.getProperty("kd.grid");
    if (grid == null) {
      run(Integer.getInteger("kd.train", 60000), Integer.getInteger("kd.epochs", 8), Integer.getInteger("kd.batch", 128),
          Double.parseDouble(System.getProperty("kd.lr", "3e-3")), System.getProperty("kd.losses", "ce,0.5/2,0.9/4"));
    } else {
      for (String g : grid.split(";")) {
        String[] f = g.split(":");
        run(Integer.parseInt(f[0]), Integer.parseInt(f[1]), Integer.parseInt(f[2]), Double.parseDouble(f[3]),
            f[4].replace('+', ','));
      }
    }
  }

  void run(int train, int epochs, int batch, double lr, String losses) throws Exception {
    int from = Integer.getInteger("kd.from", 0);
    int hidden = Integer.getInteger("kd.hidden", 32);
    int warm = Integer.getInteger("kd.warmup", 20);
    double width = Double.parseDouble(System.getProperty("kd.width", "0"));
    List<NdArray> test = FashionMnist.testSet(FashionMnist.TEST_SIZE);
    Path teacherFile = Boolean.getBoolean("kd.mlpTeacher") ? Classifier.fashionMlp() : Classifier.fashionCnn();
    ModelProto teacherModel = OnnxModels.read(teacherFile);
    double teacherAcc = Classifier.accuracy(teacherFile, test);
    ModelProto derived = null;
    if (width > 0) {
      derived = OnnxPipeline.run(teacherModel,
          List.of(PruneSpec.structured(1 - width, PruneSpec.Criterion.L1, PruneSpec.Target.CHANNELS)), Progress.NONE).model();
      System.out.printf(Locale.ROOT, "KDEXP derived width %.2f: %d params (%.1f%% of %d), untrained %.4f%n", width,
          params(derived), 100.0 * params(derived) / params(teacherModel), params(teacherModel),
          TrainingFixtures.accuracy(derived, tmp, "derived", test));
    }
    long t0 = System.nanoTime();
    Map<String, SampleArray> teacher = TeacherOutputs.compute(teacherFile, TrainingFixtures.ortInputs(from, train),
        List.of(ClassifierNetwork.OUTPUT), 500);
    System.out.printf("teacher logits %.1fs%n", (System.nanoTime() - t0) / 1e9);
    TrainingData data = new TrainingData(Map.of(ClassifierNetwork.INPUT, TrainingFixtures.images(from, train)),
        TrainingFixtures.labels(from, train), teacher);
    for (String spec : losses.split(","))
    for (String seedText : System.getProperty("kd.seeds", "5").split(",")) {
      long seed = Long.parseLong(seedText);
      LossTerm loss = spec.equals("ce") ? new LossTerm.CrossEntropy(ClassifierNetwork.OUTPUT, 10)
          : new LossTerm.Distillation(ClassifierNetwork.OUTPUT, ClassifierNetwork.OUTPUT,
              Double.parseDouble(spec.split("/")[0]), Double.parseDouble(spec.split("/")[1]));
      TrainingFixtures.StudentCnn cnn = new TrainingFixtures.StudentCnn(8, 16, 30);
      ModelProto student = derived != null ? derived
          : Boolean.getBoolean("kd.cnn") ? cnn.toOnnx(cnn.initialWeights(seed)) : mlp(hidden, seed);
      long t1 = System.nanoTime();
      TrainableGraph g = OnnxTranslator.translate(student);
      LearningRate schedule = LearningRate.cosine(lr, lr / 30);
      TrainingConfig config = TrainingConfig.builder(List.of(loss)).epochs(epochs).batchSize(batch).seed(seed)
          .learningRate(warm > 0 ? schedule.withWarmup(warm) : schedule).build();
      TrainingResult result = Trainer.train(g, data, config, TrainingListener.NONE);
      ModelProto trained = OnnxTranslator.writeBack(student, result.weights());
      double acc = TrainingFixtures.accuracy(trained, tmp, "s" + spec.replace('/', '_'), test);
      System.out.printf(Locale.ROOT, "KDEXP seed %d params %d from %d train %d epochs %d batch %d lr %s loss %s: %.4f (%.1f%% of %.4f) %.1fs%n",
          seed, params(student), from, train, epochs, batch, lr, spec, acc, 100 * acc / teacherAcc, teacherAcc, (System.nanoTime() - t1) / 1e9);
    }
  }
}
