package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.modelpress.compression.CalibratedQuantizeSpec.Activations;
import dev.modelpress.compression.CalibratedQuantizeSpec.Calibrator;
import dev.modelpress.compression.CalibratedQuantizeSpec.FidelityTarget;
import dev.modelpress.compression.CalibratedQuantizeSpec.Method;
import dev.modelpress.compression.CalibratedQuantizeSpec.Metric;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Calibrators, QDQ placement, validation and the no-calibration failure, on small graphs and synthetic data. */
class CalibratedQuantizationTest {

  @TempDir Path dir;

  // ---- calibrators ----

  @Test
  void minmaxIsTheObservedRangeAndPercentileSurvivesHistogramDoubling() {
    ActivationObserver o = new ActivationObserver();
    Random random = new Random(3);
    // Batches with growing ranges force the histogram to double several times.
    for (int b = 1; b <= 8; b++) {
      float[] v = new float[10_000];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) (random.nextDouble() * b);
      }
      o.add(v);
    }
    assertThat(o.min()).isGreaterThanOrEqualTo(0).isLessThan(0.01);
    assertThat(o.range(Calibrator.MINMAX, 0)).containsExactly(o.min(), o.max());
    // |x| is an equal mix of uniforms on [0, b], b = 1..8: only the b = 8 batch exceeds 7, so for t in
    // [7, 8] P(|x| > t) = (8 - t) / 8 / 8, which is 1% at t = 7.36.
    double p99 = o.percentileThreshold(99.0);
    assertThat(p99).isCloseTo(7.36, within(0.02));
  }

  @Test
  void entropyClipsAFewExtremeOutliersButKeepsTheBulkOfAGaussian() {
    ActivationObserver o = new ActivationObserver();
    Random random = new Random(5);
    float[] v = new float[200_000];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) random.nextGaussian();
    }
    v[0] = 60;
    v[1] = -55;
    o.add(v);
    double[] range = o.range(Calibrator.ENTROPY, 0);
    System.out.printf("entropy range of N(0,1) with outliers at 60 and -55: [%.3f, %.3f]%n", range[0], range[1]);
    assertThat(range[1]).isGreaterThan(2.5).isLessThan(20);
    assertThat(range[0]).isEqualTo(-range[1]);
    double[] percentile = o.range(Calibrator.PERCENTILE, 99.99);
    assertThat(percentile[1]).isGreaterThan(3.0).isLessThan(5.0);
  }

  // ---- static quantization on a small graph ----

  static List<NdArray> samples(int n) {
    ByteBuffer data = ByteBuffer.allocate(n * 32 * 4).order(ByteOrder.LITTLE_ENDIAN);
    Random random = new Random(17);
    for (int i = 0; i < n * 32; i++) {
      data.putFloat((float) random.nextGaussian());
    }
    return List.of(new NdArray("x", DType.FLOAT32, new long[] {n, 32}, data.flip()));
  }

  PipelineContext context() {
    return new PipelineContext(samples(64), dir, 64, 1, 1);
  }

  @Test
  void staticQuantizationPutsOnePairOnEachMatMulInputAndKeepsTheOutputsClose() throws Exception {
    ModelProto mlp = Models.mlp(13);
    CalibratedQuantizeSpec spec = new CalibratedQuantizeSpec(QuantizeSpec.int8(true, QuantizeSpec.Granularity.CHANNEL),
        null, new Activations(Calibrator.MINMAX, 0, false), null, false);
    PipelineResult r = OnnxPipeline.run(mlp, List.of(spec), context(), Progress.NONE);
    CalibrationReport report = r.steps().getFirst().calibration();
    assertThat(report.activations()).extracting(CalibrationReport.ActivationRange::tensor)
        .containsExactly("x", "a1", "a2");
    // a1 is a Relu output: non-negative, so uint8's zero point is 0.
    assertThat(report.activations().get(1).zeroPoint()).isZero();
    assertThat(report.samples()).isEqualTo(64);
    assertThat(Models.opTypes(r.model()).stream().filter("QuantizeLinear"::equals).count()).isEqualTo(3);
    assertThat(r.model().getGraph().getInputList()).isEqualTo(mlp.getGraph().getInputList());
    assertThat(r.model().getGraph().getOutputList()).isEqualTo(mlp.getGraph().getOutputList());

    Path original = OnnxGraphBuilder.write(mlp, dir);
    Path quantized = OnnxGraphBuilder.write(r.model(), dir);
    float[] x = OnnxGraphBuilder.randomFloats(99, 32, 1f);
    try (OrtRunner a = new OrtRunner(original); OrtRunner b = new OrtRunner(quantized)) {
      float[] ya = a.run("y", "x", x, 1, 32);
      float[] yb = b.run("y", "x", x, 1, 32);
      double signal = 0;
      double noise = 0;
      for (int i = 0; i < ya.length; i++) {
        signal += ya[i] * ya[i];
        noise += (ya[i] - yb[i]) * (ya[i] - yb[i]);
      }
      double sqnr = 10 * Math.log10(signal / noise);
      System.out.printf("3-layer MLP static int8: output SQNR %.1f dB%n", sqnr);
      assertThat(sqnr).isGreaterThan(25);
    }
  }

  @Test
  void aNodeWhoseWeightIsExcludedStaysFloatAndIsReportedAsSkipped() {
    CalibratedQuantizeSpec spec = new CalibratedQuantizeSpec(
        new QuantizeSpec(8, true, QuantizeSpec.Granularity.CHANNEL, List.of(), List.of("W2")), null,
        new Activations(Calibrator.PERCENTILE, 99.9, true), null, false);
    PipelineResult r = OnnxPipeline.run(Models.mlp(13), List.of(spec), context(), Progress.NONE);
    CalibrationReport report = r.steps().getFirst().calibration();
    assertThat(report.activations()).extracting(CalibrationReport.ActivationRange::tensor).containsExactly("x", "a2");
    assertThat(report.skippedActivations()).singleElement().asString().contains("W2");
    assertThat(Models.initializer(r.model(), "W2").getDataType()).isEqualTo(1);
  }

  @Test
  void aDataAwareStepWithoutCalibrationDataFailsNamingCalibrationDatasetId() {
    CalibratedQuantizeSpec spec = new CalibratedQuantizeSpec(
        new QuantizeSpec(4, true, QuantizeSpec.Granularity.CHANNEL, List.of(), List.of()), Method.GPTQ, null, null, false);
    assertThatThrownBy(() -> OnnxPipeline.run(Models.mlp(13), List.of(spec), Progress.NONE))
        .isInstanceOf(CompressionException.class).hasMessageContaining("calibrationDatasetId").hasMessageContaining("GPTQ");
  }

  @Test
  void gptqOnASmallMlpRunsInOrtAndBeatsRoundToNearestOnEveryLayer() throws Exception {
    CalibratedQuantizeSpec spec = new CalibratedQuantizeSpec(
        new QuantizeSpec(4, false, QuantizeSpec.Granularity.CHANNEL, List.of(), List.of()), Method.GPTQ, null, null, false);
    PipelineResult r = OnnxPipeline.run(Models.mlp(13), List.of(spec), context(), Progress.NONE);
    List<CalibrationReport.LayerError> layers = r.steps().getFirst().calibration().layers();
    assertThat(layers).hasSize(3);
    // x is white noise, so W1's Hessian is nearly diagonal and GPTQ can only tie; later layers gain.
    assertThat(layers).allSatisfy(l -> assertThat(l.gptq()).isLessThanOrEqualTo(l.roundToNearest() * 1.0001));
    assertThat(layers.stream().filter(l -> l.gptq() < 0.95 * l.roundToNearest()).count()).isGreaterThanOrEqualTo(1);
    Path out = OnnxGraphBuilder.write(r.model(), dir);
    try (OrtRunner runner = new OrtRunner(out)) {
      assertThat(runner.run("y", "x", OnnxGraphBuilder.randomFloats(1, 32, 1f), 1, 32)).hasSize(16);
    }
  }

  // ---- validation ----

  static final ModelSummary MLP = OnnxModels.summarize(Models.mlp(13));

  @Test
  void validationNamesCalibrationDatasetIdAndTheInvalidFields() {
    CalibratedQuantizeSpec gptq = new CalibratedQuantizeSpec(
        new QuantizeSpec(4, true, QuantizeSpec.Granularity.CHANNEL, List.of(), List.of()), Method.GPTQ, null, null, false);
    assertThat(SpecValidator.validate(List.of(gptq), MLP, false)).extracting(Violation::field)
        .containsExactly("calibrationDatasetId");
    assertThat(SpecValidator.validate(List.of(gptq), MLP, true)).isEmpty();

    CalibratedQuantizeSpec static4 = new CalibratedQuantizeSpec(
        new QuantizeSpec(4, true, QuantizeSpec.Granularity.CHANNEL, List.of(), List.of()), Method.GPTQ,
        new Activations(Calibrator.PERCENTILE, 120, false), new FidelityTarget(Metric.COSINE, 0.99, 8), false);
    assertThat(SpecValidator.validate(List.of(static4), MLP, true)).extracting(Violation::field).containsExactly(
        "steps[0].weights.bits", "steps[0].method", "steps[0].target", "steps[0].activations.percentile");

    CalibratedQuantizeSpec mixed = new CalibratedQuantizeSpec(
        new QuantizeSpec(8, true, QuantizeSpec.Granularity.CHANNEL, List.of(), List.of()), Method.RTN, null,
        new FidelityTarget(Metric.COSINE, 1.5, 8), false);
    assertThat(SpecValidator.validate(List.of(mixed), MLP, true)).extracting(Violation::field)
        .containsExactly("steps[0].target.min", "steps[0].target.higherBits");
  }
}
