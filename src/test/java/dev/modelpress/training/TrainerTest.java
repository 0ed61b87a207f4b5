package dev.modelpress.training;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.modelpress.compression.CompressionCancelledException;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.ClassifierNetwork;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The trainer's guarantees on the test kit's Fashion-MNIST MLP (Gemm layers: cheap to train in
 * SameDiff) over small slices of the real training set: reproducibility, exact resume, checkpoint
 * integrity, prompt cancellation, fixed masks, L1 pruning and early stopping.
 */
class TrainerTest {

  private static final ClassifierNetwork MLP = ClassifierNetwork.MLP;
  private static final LossTerm CE = new LossTerm.CrossEntropy(ClassifierNetwork.OUTPUT, 10);

  private static TrainingData data(int n) {
    return TrainingData.labelled(Map.of(ClassifierNetwork.INPUT, TrainingFixtures.images(0, n)),
        TrainingFixtures.labels(0, n));
  }

  private static TrainableGraph mlp(long seed) {
    return TrainingFixtures.network(MLP, MLP.initialWeights(seed));
  }

  private static TrainingConfig.Builder config(int epochs, long seed) {
    return TrainingConfig.builder(List.of(CE)).epochs(epochs).batchSize(64).seed(seed)
        .learningRate(LearningRate.cosine(2e-3, 1e-4).withWarmup(5)).validation(0.1, 0);
  }

  private static Map<String, float[]> values(TrainingResult r) {
    return r.weightValues();
  }

  private static void assertBitIdentical(Map<String, float[]> a, Map<String, float[]> b) {
    assertThat(a.keySet()).isEqualTo(b.keySet());
    for (String name : a.keySet()) {
      float[] x = a.get(name);
      float[] y = b.get(name);
      assertThat(x.length).isEqualTo(y.length);
      for (int i = 0; i < x.length; i++) {
        if (Float.floatToRawIntBits(x[i]) != Float.floatToRawIntBits(y[i])) {
          throw new AssertionError(name + "[" + i + "] differs: " + x[i] + " vs " + y[i]);
        }
      }
    }
  }

  @Test
  void sameSeedGivesBitIdenticalWeightsAndAnotherSeedDoesNot() {
    TrainingData data = data(1200);
    TrainingResult a = Trainer.train(mlp(1), data, config(2, 3).build(), TrainingListener.NONE);
    TrainingResult b = Trainer.train(mlp(1), data, config(2, 3).build(), TrainingListener.NONE);
    TrainingResult c = Trainer.train(mlp(1), data, config(2, 4).build(), TrainingListener.NONE);
    assertBitIdentical(values(a), values(b));
    assertThat(a.history()).isEqualTo(b.history());
    assertThat(Arrays.equals(values(a).get("fc1.weight"), values(c).get("fc1.weight"))).isFalse();
    // 1,080 training samples in batches of 64: 17 steps an epoch.
    assertThat(a.steps()).isEqualTo(34);
    assertThat(a.metric()).isEqualTo("accuracy");
    assertThat(a.history().get(1).validationMetric()).isGreaterThan(0.6);
    assertThat(a.history().get(1).trainLoss()).isLessThan(a.history().get(0).trainLoss());
  }

  @Test
  void resumingFromTheCheckpointAfterEpochOneGivesTheUninterruptedWeightsBitForBit() {
    TrainingData data = data(1000);
    TrainingConfig config = config(3, 11).build();
    byte[][] afterEpochOne = new byte[1][];
    TrainingResult full = Trainer.train(mlp(2), data, config, new TrainingListener() {
      @Override
      public void onEpoch(EpochStats stats, Checkpoint checkpoint) {
        if (stats.epoch() == 1) {
          afterEpochOne[0] = checkpoint.toBytes();
        }
      }
    });
    Checkpoint checkpoint = Checkpoint.fromBytes(afterEpochOne[0]);
    assertThat(checkpoint.epoch()).isEqualTo(1);
    assertThat(checkpoint.step()).isEqualTo(15); // 900 training samples / 64, rounded up

    List<Integer> epochsRun = new ArrayList<>();
    // Different starting weights: the resume must overwrite every one of them.
    TrainingResult resumed = Trainer.resume(mlp(77), data, config, new TrainingListener() {
      @Override
      public void onEpoch(EpochStats stats, Checkpoint c) {
        epochsRun.add(stats.epoch());
      }
    }, checkpoint);
    assertThat(epochsRun).containsExactly(2, 3);
    assertBitIdentical(values(full), values(resumed));
    assertThat(resumed.history()).isEqualTo(full.history());
    assertThat(resumed.steps()).isEqualTo(45);
  }

  @Test
  void checkpointRoundTripsAndACorruptOneIsRejectedWithAClearMessage() {
    Checkpoint[] last = new Checkpoint[1];
    Trainer.train(mlp(3), data(300), config(1, 1).build(), new TrainingListener() {
      @Override
      public void onEpoch(EpochStats stats, Checkpoint checkpoint) {
        last[0] = checkpoint;
      }
    });
    byte[] bytes = last[0].toBytes();
    // Weights, two Adam moments and the best epoch's weights: four float copies of the 235,146
    // parameters, plus names, shapes and history.
    assertThat(bytes.length).isBetween(4 * 4 * 235_146, 4 * 4 * 235_146 + 4_096);
    assertThat(Checkpoint.fromBytes(bytes).toBytes()).isEqualTo(bytes);

    byte[] flipped = bytes.clone();
    flipped[bytes.length / 2] ^= 0x10;
    assertThatThrownBy(() -> Checkpoint.fromBytes(flipped))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("corrupt").hasMessageContaining("CRC-32C");
    assertThatThrownBy(() -> Checkpoint.fromBytes(Arrays.copyOf(bytes, bytes.length - 100)))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("truncated");
    assertThatThrownBy(() -> Checkpoint.fromBytes("PK\3\4 a zip file, not a checkpoint".getBytes()))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not a modelpress training checkpoint");
    byte[] future = bytes.clone();
    future[7] = 9;
    assertThatThrownBy(() -> Checkpoint.fromBytes(future))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("version 9");
    assertThatThrownBy(() -> Trainer.resume(mlp(3), data(300), config(2, 2).build(), TrainingListener.NONE, last[0]))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("seed 1");
  }

  @Test
  void throwingCancellationFromTheStepListenerStopsWithinOneBatch() {
    int[] steps = {0};
    int[] epochs = {0};
    assertThatThrownBy(() -> Trainer.train(mlp(4), data(2000), config(3, 1).build(), new TrainingListener() {
      @Override
      public void onStep(int epoch, int step, int total, double loss) {
        steps[0]++;
        if (step == 3) {
          throw new CompressionCancelledException("job cancelled");
        }
      }

      @Override
      public void onEpoch(EpochStats stats, Checkpoint checkpoint) {
        epochs[0]++;
      }
    })).isInstanceOf(CompressionCancelledException.class);
    assertThat(steps[0]).isEqualTo(3);
    assertThat(epochs[0]).isZero();
  }

  @Test
  void fixedMasksKeepExactlyTheStartingZeros() {
    Map<String, float[]> start = MLP.initialWeights(5);
    Random random = new Random(5);
    for (String name : List.of("fc1.weight", "fc2.weight")) {
      float[] w = start.get(name);
      for (int i = 0; i < w.length; i++) {
        if (random.nextDouble() < 0.8) {
          w[i] = 0f;
        }
      }
    }
    // fc3 is masked explicitly: its even entries are held at their (non-zero) starting values.
    boolean[] fc3 = new boolean[10 * 128];
    for (int i = 0; i < fc3.length; i++) {
      fc3[i] = i % 2 == 1;
    }
    TrainingConfig config = config(1, 1).freezeZeros(true).masks(Map.of("fc3.weight", fc3)).build();
    TrainingResult result = Trainer.train(TrainingFixtures.network(MLP, copy(start)), data(1500), config,
        TrainingListener.NONE);
    Map<String, float[]> end = values(result);
    for (String name : List.of("fc1.weight", "fc2.weight")) {
      float[] before = start.get(name);
      float[] after = end.get(name);
      long zeros = 0;
      long moved = 0;
      for (int i = 0; i < before.length; i++) {
        if (before[i] == 0f) {
          zeros++;
          assertThat(Float.floatToRawIntBits(after[i])).as("%s[%d]", name, i).isEqualTo(Float.floatToRawIntBits(0f));
        } else {
          assertThat(after[i]).as("%s[%d] must not become zero", name, i).isNotEqualTo(0f);
          moved += after[i] != before[i] ? 1 : 0;
        }
      }
      assertThat(TrainingFixtures.exactZeros(after)).isEqualTo(zeros);
      assertThat((double) moved / (before.length - zeros)).isGreaterThan(0.9);
      assertThat(result.sparsity().get(name)).isCloseTo(0.8, within(0.01));
    }
    float[] w3 = end.get("fc3.weight");
    for (int i = 0; i < w3.length; i += 2) {
      assertThat(w3[i]).isEqualTo(start.get("fc3.weight")[i]);
    }
    assertThat(w3[1]).isNotEqualTo(start.get("fc3.weight")[1]);
    // Biases are never frozen by freezeZeros: they start at zero and train.
    assertThat(TrainingFixtures.exactZeros(end.get("fc1.bias"))).isLessThan(10);
  }

  @Test
  void l1PenaltyDrivesWeightsBelowThePruningThresholdAndTheSparsityIsReported() {
    TrainingData data = data(2000);
    double threshold = 2e-3;
    TrainingResult plain = Trainer.train(mlp(6), data, config(2, 1)
        .l1(L1Regularization.pruneBelow(0, threshold)).build(), TrainingListener.NONE);
    TrainingResult l1 = Trainer.train(mlp(6), data, config(2, 1)
        .l1(L1Regularization.pruneBelow(2e-4, threshold)).build(), TrainingListener.NONE);
    Map<String, float[]> w = values(l1);
    long zeros = 0;
    long total = 0;
    for (String name : List.of("fc1.weight", "fc2.weight", "fc3.weight")) {
      zeros += TrainingFixtures.exactZeros(w.get(name));
      total += w.get(name).length;
      for (float x : w.get(name)) {
        assertThat(x == 0f || Math.abs(x) >= threshold).isTrue();
      }
    }
    System.out.printf(Locale.ROOT, "L1: sparsity below %.0e without penalty %.3f, with lambda 2e-4 %.3f;"
            + " validation accuracy %.4f vs %.4f%n", threshold, plain.overallSparsity(), l1.overallSparsity(),
        l1.bestMetric(), plain.bestMetric());
    assertThat(l1.overallSparsity()).isCloseTo((double) zeros / total, within(1e-12));
    assertThat(l1.overallSparsity()).isGreaterThan(0.12);
    assertThat(l1.overallSparsity()).isGreaterThan(5 * plain.overallSparsity());
    assertThat(l1.bestMetric()).isGreaterThan(0.7);

    TrainingResult target = Trainer.train(mlp(6), data, config(1, 1)
        .l1(L1Regularization.toSparsity(2e-4, 0.9)).build(), TrainingListener.NONE);
    assertThat(target.overallSparsity()).isCloseTo(0.9, within(1e-6));
  }

  @Test
  void earlyStoppingStopsAfterPatienceAndReturnsTheBestEpochsWeights() {
    TrainingData data = data(600);
    TrainingConfig.Builder overfit = TrainingConfig.builder(List.of(CE)).batchSize(32).seed(9)
        .learningRate(LearningRate.constant(3e-3)).validation(0.3, 1);
    TrainingResult stopped = Trainer.train(mlp(7), data, overfit.epochs(30).build(), TrainingListener.NONE);
    assertThat(stopped.stoppedEarly()).isTrue();
    assertThat(stopped.epochsRun()).isEqualTo(stopped.bestEpoch() + 1).isLessThan(30);
    double best = stopped.history().stream().mapToDouble(EpochStats::validationMetric).max().orElseThrow();
    assertThat(stopped.bestMetric()).isEqualTo(best);
    // A run that ends at the best epoch computes exactly the weights the early stop restored.
    TrainingResult upToBest = Trainer.train(mlp(7), data, overfit.epochs(stopped.bestEpoch()).build(),
        TrainingListener.NONE);
    assertBitIdentical(values(stopped), values(upToBest));
  }

  @Test
  void learningRateSchedulesFollowTheirFormulas() {
    LearningRate cosine = LearningRate.cosine(1e-2, 1e-4).withWarmup(10);
    assertThat(cosine.at(0, 100, 1010)).isCloseTo(1e-3, within(1e-12));
    assertThat(cosine.at(9, 100, 1010)).isCloseTo(1e-2, within(1e-12));
    assertThat(cosine.at(10, 100, 1010)).isCloseTo(1e-2, within(1e-12));
    assertThat(cosine.at(510, 100, 1010)).isCloseTo((1e-2 + 1e-4) / 2, within(1e-12));
    assertThat(cosine.at(1010, 100, 1010)).isCloseTo(1e-4, within(1e-12));
    LearningRate step = LearningRate.stepDecay(1e-3, 0.5, 2);
    assertThat(step.at(199, 100, 1000)).isEqualTo(1e-3);
    assertThat(step.at(200, 100, 1000)).isEqualTo(5e-4);
    assertThat(step.at(450, 100, 1000)).isEqualTo(2.5e-4);
    assertThat(LearningRate.constant(3e-4).at(12345, 10, 20)).isEqualTo(3e-4);
    assertThatThrownBy(() -> LearningRate.cosine(1e-3, 1e-2)).hasMessageContaining("cosine minimum");
  }

  @Test
  void mseOnLogitsMovesTheStudentTowardsTheTeachersOutputs() throws Exception {
    int n = 1500;
    Map<String, SampleArray> teacher = TeacherOutputs.compute(Classifier.fashionMlp(),
        TrainingFixtures.ortInputs(0, n), List.of(ClassifierNetwork.OUTPUT), 500);
    TrainingData data = new TrainingData(Map.of(ClassifierNetwork.INPUT, TrainingFixtures.images(0, n)), null, teacher);
    LossTerm mse = new LossTerm.Mse(ClassifierNetwork.OUTPUT, ClassifierNetwork.OUTPUT, 1.0);
    TrainingResult r = Trainer.train(mlp(8), data, TrainingConfig.builder(List.of(mse)).epochs(3).batchSize(64)
        .seed(1).learningRate(LearningRate.constant(1e-3)).validation(0.2, 0).build(), TrainingListener.NONE);
    assertThat(r.metric()).isEqualTo("loss");
    double first = r.history().getFirst().validationLoss();
    double last = r.history().getLast().validationLoss();
    System.out.printf(Locale.ROOT, "MSE to the teacher's logits on held-out samples: %.3f after epoch 1, %.3f after 3%n",
        first, last);
    assertThat(last).isLessThan(0.7 * first);
    assertThat(r.bestMetric()).isEqualTo(last);
  }

  private static Map<String, float[]> copy(Map<String, float[]> weights) {
    Map<String, float[]> out = new HashMap<>();
    weights.forEach((k, v) -> out.put(k, v.clone()));
    return out;
  }
}
