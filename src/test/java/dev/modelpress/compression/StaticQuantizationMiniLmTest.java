package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.CalibratedQuantizeSpec.Activations;
import dev.modelpress.compression.CalibratedQuantizeSpec.Calibrator;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.testing.MiniLm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Static int8 quantization (activations and weights) of the real all-MiniLM-L6-v2, calibrated on
 * half of the test sentences and measured by sentence-embedding cosine on the other half.
 */
class StaticQuantizationMiniLmTest {

  @TempDir static Path dir;
  static ModelProto original;

  @BeforeAll
  static void read() throws Exception {
    original = OnnxModels.read(MiniLm.modelFile());
  }

  private static PipelineResult quantize(Activations activations) {
    CalibratedQuantizeSpec spec = new CalibratedQuantizeSpec(QuantizeSpec.int8(true, QuantizeSpec.Granularity.CHANNEL),
        null, activations, null, false);
    PipelineContext ctx = PipelineContext.calibrated(CalibrationData.calibration(), dir).withMaxCalibrationSamples(16);
    return OnnxPipeline.run(original, List.of(spec), ctx, Progress.NONE);
  }

  private static double measure(PipelineResult r, String label) throws Exception {
    Path out = Files.createTempFile(dir, "static-", ".onnx");
    OnnxModels.write(r.model(), out);
    double cosine = CalibrationData.meanSentenceCosine(MiniLm.modelFile(), out, CalibrationData.evaluation());
    double size = (double) Files.size(out) / Files.size(MiniLm.modelFile());
    System.out.printf("MiniLM static int8 (%s): mean sentence cosine %.5f on %d held-out sentences "
        + "(ONNX Runtime quantize_dynamic per-channel: 0.992), file %.1f%% of fp32%n", label, cosine,
        CalibrationData.evaluationSentences().size(), 100 * size);
    // int8 weights: the file shrinks to about a quarter.
    assertThat(size).isLessThan(0.30);
    return cosine;
  }

  @Test
  void minmaxStaticInt8KeepsSentenceEmbeddingsAbove099AndPlacesQdqOnMatMulInputsOnly() throws Exception {
    PipelineResult r = quantize(new Activations(Calibrator.MINMAX, 0, false));
    ModelProto m = r.model();
    // The model's interface and metadata are untouched.
    assertThat(m.getGraph().getInputList()).isEqualTo(original.getGraph().getInputList());
    assertThat(m.getGraph().getOutputList()).isEqualTo(original.getGraph().getOutputList());
    assertThat(m.getMetadataPropsList()).isEqualTo(original.getMetadataPropsList());
    assertThat(OnnxModels.defaultOpset(m)).isEqualTo(OnnxModels.defaultOpset(original));

    // 36 weight MatMuls (one activation input each, q/k/v sharing one) and 12 attention MatMuls (two
    // activation inputs each): every QuantizeLinear output feeds a DequantizeLinear, and every
    // DequantizeLinear of an activation feeds only MatMuls.
    long quantizeNodes = m.getGraph().getNodeList().stream().filter(n -> n.getOpType().equals("QuantizeLinear")).count();
    CalibrationReport report = r.steps().getFirst().calibration();
    assertThat(quantizeNodes).isEqualTo(report.activations().size());
    assertThat(report.activations()).hasSize(6 * (1 + 1 + 1 + 1 + 4));
    for (NodeProto n : m.getGraph().getNodeList()) {
      for (String in : n.getInputList()) {
        if (in.endsWith("_DequantizeLinear_Output")) {
          assertThat(n.getOpType()).as(n.getName()).isEqualTo("MatMul");
        }
      }
    }
    // Softmax outputs are non-negative: uint8 with zero point 0 covers them exactly.
    assertThat(report.activations().stream().filter(a -> a.min() >= 0).allMatch(a -> a.zeroPoint() == 0)).isTrue();
    assertThat(measure(r, "minmax")).isGreaterThanOrEqualTo(0.99);
  }

  @Test
  void percentileAndEntropyCalibratorsClipTheRangeAndGiveValidModels() throws Exception {
    PipelineResult p = quantize(new Activations(Calibrator.PERCENTILE, 99.99, false));
    PipelineResult e = quantize(new Activations(Calibrator.ENTROPY, 0, false));
    for (PipelineResult r : List.of(p, e)) {
      for (CalibrationReport.ActivationRange a : r.steps().getFirst().calibration().activations()) {
        if (a.tensor().contains("Softmax")) {
          // Probabilities keep their whole range: clipping them would drop the attention that matters.
          assertThat(new double[] {a.low(), a.high()}).as(a.tensor()).containsExactly(0, 1);
          continue;
        }
        assertThat(a.low()).as(a.tensor()).isGreaterThanOrEqualTo(a.min());
        assertThat(a.high()).as(a.tensor()).isLessThanOrEqualTo(a.max());
      }
    }
    // Clipping happens somewhere: the FFN's GELU outputs have long tails.
    assertThat(p.steps().getFirst().calibration().activations()).anyMatch(a -> a.high() < 0.9 * a.max());
    assertThat(e.steps().getFirst().calibration().activations()).anyMatch(a -> a.high() < 0.9 * a.max());
    assertThat(measure(p, "percentile 99.99")).isGreaterThanOrEqualTo(0.97);
    e.steps().getFirst().calibration().activations().stream()
        .sorted(java.util.Comparator.comparingDouble(a -> (a.high() - a.low()) / (a.max() - a.min()))).limit(6)
        .forEach(a -> System.out.printf("entropy clips %s: [%.3f, %.3f] of [%.3f, %.3f]%n", a.tensor(), a.low(), a.high(),
            a.min(), a.max()));
    assertThat(measure(e, "entropy")).isGreaterThanOrEqualTo(0.97);
  }

  @Test
  void symmetricInt8ActivationsAlsoRun() throws Exception {
    PipelineResult r = quantize(new Activations(Calibrator.MINMAX, 0, true));
    assertThat(r.steps().getFirst().calibration().activations()).allMatch(a -> a.zeroPoint() == 0);
    assertThat(measure(r, "minmax, int8 symmetric")).isGreaterThanOrEqualTo(0.98);
  }
}
