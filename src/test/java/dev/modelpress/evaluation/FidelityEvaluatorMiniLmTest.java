package dev.modelpress.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.MiniLm;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The evaluator on the real all-MiniLM-L6-v2 encoder and 50 real sentences. */
class FidelityEvaluatorMiniLmTest {

  private static final int SENTENCES = 50;

  @TempDir static Path dir;

  private static FidelityEvaluator evaluator;
  private static List<NdArray> dataset;

  @BeforeAll
  static void encodeSentences() throws Exception {
    evaluator = new FidelityEvaluator();
    dataset = MiniLm.encode(MiniLm.sentences().subList(0, SENTENCES), 128);
  }

  @AfterAll
  static void closeEvaluator() {
    evaluator.close();
  }

  @Test
  void modelComparedWithItselfHasCosineOneAndNoError() throws Exception {
    FidelityReport report = evaluator.compare(MiniLm.modelFile(), MiniLm.modelFile(), dataset, EvaluationOptions.defaults());

    assertThat(report.samples()).isEqualTo(SENTENCES);
    OutputFidelity hidden = report.output(MiniLm.OUTPUT);
    assertThat(hidden.units()).isEqualTo(SENTENCES);
    assertThat(hidden.unitShape()).containsExactly(dataset.getFirst().shape()[1], 384L);
    assertThat(hidden.meanCosine()).isCloseTo(1.0, within(1e-6));
    assertThat(hidden.minCosine()).isCloseTo(1.0, within(1e-6));
    assertThat(hidden.maxAbsError()).isZero();
    assertThat(hidden.candidateNonFinite()).isZero();
    assertThat(hidden.classifier()).isNull();
    assertThat(report.original().runs()).isEqualTo(50);
    assertThat(report.original().p95Millis()).isGreaterThanOrEqualTo(report.original().p50Millis()).isPositive();
    System.out.printf("MiniLM p50 %.2f ms vs %.2f ms, speedup %.3f%n",
        report.original().p50Millis(), report.candidate().p50Millis(), report.speedup());
  }

  @Test
  void scalingOneMatMulWeightByFivePercentShowsAsLostFidelity() throws Exception {
    String weight = TestModels.firstMatMulWeight(TestModels.read(MiniLm.modelFile()));
    Path perturbed = perturbedCopy(weight, 1.05f);

    FidelityReport report = evaluator.compare(
        MiniLm.modelFile(), perturbed, dataset, EvaluationOptions.defaults().withBatchSize(8).withLatencyRuns(1, 5));

    OutputFidelity hidden = report.output(MiniLm.OUTPUT);
    System.out.printf("%s x1.05: mean cosine %.6f, min %.6f, max abs error %.4f, mean abs error %.5f%n",
        weight, hidden.meanCosine(), hidden.minCosine(), hidden.maxAbsError(), hidden.meanAbsError());
    assertThat(report.samples()).isEqualTo(SENTENCES);
    assertThat(hidden.meanCosine()).isLessThan(0.99999).isGreaterThan(0.9);
    assertThat(hidden.minCosine()).isLessThan(hidden.meanCosine());
    assertThat(hidden.maxAbsError()).isGreaterThan(0.01);
    assertThat(hidden.candidateNonFinite()).isZero();

    // The same loss, seen through the model's real use: pooled sentence embeddings still agree closely.
    float[][] a = MiniLm.sentenceEmbeddings(MiniLm.modelFile(), dataset);
    float[][] b = MiniLm.sentenceEmbeddings(perturbed, dataset);
    double sum = 0;
    for (int i = 0; i < SENTENCES; i++) {
      sum += MiniLm.cosine(a[i], b[i]);
    }
    System.out.printf("sentence-embedding cosine original vs perturbed: %.6f%n", sum / SENTENCES);
    assertThat(sum / SENTENCES).isLessThan(1.0 - 1e-6).isGreaterThan(0.95);
  }

  private static Path perturbedCopy(String weight, float factor) throws Exception {
    ModelProto model = TestModels.read(MiniLm.modelFile());
    return TestModels.write(TestModels.scaleInitializer(model, weight, factor), dir, "perturbed.onnx");
  }
}
