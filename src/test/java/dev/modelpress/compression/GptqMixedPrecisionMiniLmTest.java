package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.CalibratedQuantizeSpec.FidelityTarget;
import dev.modelpress.compression.CalibratedQuantizeSpec.Method;
import dev.modelpress.compression.CalibratedQuantizeSpec.Metric;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.MiniLm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GPTQ and mixed precision on the real all-MiniLM-L6-v2 at 4 bits per channel, calibrated on half
 * of the test sentences and measured on the other half.
 */
class GptqMixedPrecisionMiniLmTest {

  /** The 36 MatMul weights of the encoder (the embeddings stay float here). */
  static final List<String> MATMUL_WEIGHTS = List.of("onnx::MatMul_\\d+");

  @TempDir static Path dir;
  static ModelProto original;

  @BeforeAll
  static void read() throws Exception {
    original = OnnxModels.read(MiniLm.modelFile());
  }

  static QuantizeSpec int4() {
    return new QuantizeSpec(4, true, QuantizeSpec.Granularity.CHANNEL, MATMUL_WEIGHTS, List.of());
  }

  static PipelineResult run(CalibratedQuantizeSpec spec) {
    PipelineContext ctx = PipelineContext.calibrated(CalibrationData.calibration(), dir).withMaxCalibrationSamples(32);
    return OnnxPipeline.run(original, List.of(spec), ctx, Progress.NONE);
  }

  static double heldOutCosine(PipelineResult r) throws Exception {
    Path out = Files.createTempFile(dir, "int4-", ".onnx");
    OnnxModels.write(r.model(), out);
    return CalibrationData.meanSentenceCosine(MiniLm.modelFile(), out, CalibrationData.evaluation());
  }

  @Test
  void gptqHasLowerLayerAndModelOutputErrorThanRoundToNearestAt4Bits() throws Exception {
    PipelineResult gptq = run(new CalibratedQuantizeSpec(int4(), Method.GPTQ, null, null, false));
    PipelineResult rtn = run(new CalibratedQuantizeSpec(int4(), Method.RTN, null, null, false));

    List<CalibrationReport.LayerError> layers = gptq.steps().getFirst().calibration().layers();
    assertThat(layers).hasSize(36);
    double rtnSum = 0;
    double gptqSum = 0;
    for (CalibrationReport.LayerError l : layers) {
      // On the calibration inputs GPTQ minimises exactly this error, layer by layer.
      assertThat(l.gptq()).as(l.tensor()).isLessThan(l.roundToNearest());
      rtnSum += l.roundToNearest();
      gptqSum += l.gptq();
    }
    double gptqCosine = heldOutCosine(gptq);
    double rtnCosine = heldOutCosine(rtn);
    System.out.printf("MiniLM int4 per-channel symmetric, 36 MatMul weights: mean relative layer error RTN %.5f, "
        + "GPTQ %.5f (%.1f%% lower); held-out sentence cosine RTN %.5f, GPTQ %.5f%n", rtnSum / 36, gptqSum / 36,
        100 * (1 - gptqSum / rtnSum), rtnCosine, gptqCosine);
    assertThat(gptqSum).isLessThan(0.8 * rtnSum);
    assertThat(gptqCosine).isGreaterThan(rtnCosine);
  }

  @Test
  void mixedPrecisionMeetsATargetThatUniform4BitMissesByKeepingTheMostSensitiveTensorsAt8Bits() throws Exception {
    double target = 0.98;
    PipelineResult mixed = run(new CalibratedQuantizeSpec(int4(), Method.RTN, null,
        new FidelityTarget(Metric.COSINE, target, 8), true));
    CalibrationReport report = mixed.steps().getFirst().calibration();
    CalibrationReport.MixedPrecision m = report.mixed();

    // The sensitivity table ranks all 36 tensors, worst first.
    assertThat(report.sensitivity()).hasSize(36);
    for (int i = 1; i < report.sensitivity().size(); i++) {
      assertThat(report.sensitivity().get(i).error()).isLessThanOrEqualTo(report.sensitivity().get(i - 1).error());
    }
    assertThat(m.uniform()).isLessThan(target);
    assertThat(m.achieved()).isGreaterThanOrEqualTo(target);
    assertThat(m.kept()).isNotEmpty().hasSizeLessThan(36);
    // The kept tensors are the most sensitive ones, and the report marks them 8-bit.
    assertThat(m.kept()).isEqualTo(report.sensitivity().subList(0, m.kept().size()).stream()
        .map(CalibrationReport.Sensitivity::tensor).toList());
    for (TensorReport t : mixed.steps().getFirst().tensors()) {
      assertThat(t.bits()).as(t.name()).isEqualTo(m.kept().contains(t.name()) ? 8 : 4);
    }

    PipelineResult uniform = run(new CalibratedQuantizeSpec(int4(), Method.RTN, null, null, false));
    double mixedCosine = heldOutCosine(mixed);
    double uniformCosine = heldOutCosine(uniform);
    System.out.printf("MiniLM mixed precision (target cosine %.3f on calibration outputs): kept %d of 36 at int8 %s; "
        + "calibration cosine uniform int4 %.5f -> mixed %.5f in %d trials; held-out sentence cosine uniform %.5f, "
        + "mixed %.5f; most sensitive: %s%n", target, m.kept().size(), m.kept(), m.uniform(), m.achieved(), m.trials(),
        uniformCosine, mixedCosine, report.sensitivity().subList(0, 3));
    assertThat(mixedCosine).isGreaterThan(uniformCosine);
  }
}
