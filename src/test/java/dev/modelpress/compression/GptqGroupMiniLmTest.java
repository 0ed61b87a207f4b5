package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.compression.QuantizeSpec.RangeMethod;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.MiniLmBaseline;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * GPTQ with per-group 4-bit scales on the real all-MiniLM-L6-v2 against round-to-nearest with the
 * same scheme (int4, groups of 32 along K, asymmetric, MSE ranges), both written by the weight-only
 * encoder (MatMulNBits at the model's opset 11). GPTQ calibrates on {@link #CALIBRATION}, sentences
 * written for this test that appear nowhere else; both are measured on all of {@link
 * MiniLm#sentences()}, which the calibration never saw.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class GptqGroupMiniLmTest {

  static final List<String> CALIBRATION = List.of(
      "The ferry leaves the harbour every morning at seven unless the wind is too strong.",
      "She repaired the old radio with parts from a broken television.",
      "Interest rates rose for the third time this year, and mortgage applications fell.",
      "A small bakery on the corner sells bread made with rye from local farms.",
      "The committee postponed its decision until the budget figures are final.",
      "Glaciers in the northern valleys have retreated several hundred metres since 1980.",
      "He forgot his umbrella on the train and arrived at the interview soaking wet.",
      "The compiler rejects the program because a variable is used before it is declared.",
      "Volunteers planted two thousand trees along the river to prevent erosion.",
      "Our neighbours adopted a three-legged cat from the shelter last spring.",
      "The orchestra rehearsed the symphony for six weeks before the premiere.",
      "Heavy snow closed the mountain pass and stranded dozens of lorries overnight.",
      "To reset the router, hold the button on the back for ten seconds.",
      "Historians still argue about the causes of the empire's sudden collapse.",
      "The new vaccine requires two doses given four weeks apart.",
      "My grandmother grows tomatoes, beans and squash in a tiny garden behind the house.",
      "The striker scored twice in the final ten minutes to win the cup.",
      "Solar panels on the school roof now cover most of its electricity needs.",
      "A leaking pipe in the basement flooded the storage room during the weekend.",
      "The museum reopened after a long renovation with a new wing for modern art.",
      "Please submit the signed form to the front desk before Friday noon.",
      "Bees communicate the direction of flowers to one another by dancing.",
      "The startup raised twelve million dollars to build cheaper batteries.",
      "Fog delayed dozens of flights at the airport this morning.",
      "He translated the poem from Portuguese, keeping its rhyme and rhythm.",
      "The database query became fast again after the missing index was added.",
      "Children at the camp learned to build a fire and pitch a tent.",
      "The judge ruled that the evidence had been collected unlawfully.",
      "A sudden storm forced the sailors to shelter in a narrow bay.",
      "The recipe calls for two cups of flour, one egg and a pinch of salt.",
      "Scientists detected water vapour in the atmosphere of a distant planet.",
      "The library extended its opening hours during the exam period.",
      "Traffic on the ring road slowed to a crawl after a lorry lost its load.",
      "The painter mixed ochre and blue to get the colour of the evening sky.",
      "Our flight was overbooked, so the airline offered us a voucher to wait.",
      "The sensor sends a reading every second over a low-power radio link.",
      "Farmers fear that the dry summer will halve this year's wheat harvest.",
      "The actor forgot his lines on opening night but improvised brilliantly.",
      "Wash the lettuce carefully and dry it before adding the dressing.",
      "The city council voted to turn the old railway line into a cycle path.");

  @TempDir Path dir;

  MiniLmBaseline baseline;

  @BeforeAll
  void embedWithTheOriginal() throws Exception {
    assertThat(MiniLm.sentences()).hasSizeGreaterThanOrEqualTo(50).doesNotContainAnyElementsOf(CALIBRATION);
    baseline = MiniLmBaseline.of(MiniLm.sentences(), 128);
  }

  record Measured(double meanCosine, double minCosine, double embeddingMse, double sizeRatio, StepReport step) {}

  Measured measure(StepSpec spec, PipelineContext ctx, String label) throws Exception {
    PipelineResult r = OnnxPipeline.run(baseline.model(), List.of(spec), ctx, Progress.NONE);
    MiniLmBaseline.Agreement a = baseline.measure(r.model(), dir);
    Measured m = new Measured(a.meanCosine(), a.minCosine(), a.embeddingMse(), a.sizeRatio(), r.steps().getFirst());
    System.out.printf("MiniLM %-44s mean cosine %.5f (min %.5f) over %d sentences, embedding MSE %.3g, file %.1f%%%n"
        + "    %s%n", label, m.meanCosine(), m.minCosine(), a.sentences(), m.embeddingMse(), 100 * m.sizeRatio(),
        m.step().summary());
    return m;
  }

  static QuantizeSpec int4Group32() {
    return QuantizeSpec.integer(4, false, Granularity.GROUP, 32, RangeMethod.MSE);
  }

  @Test
  void gptqGroup32HasLowerOutputErrorThanRoundToNearestAndKeepsCosineAtLeast098() throws Exception {
    PipelineContext ctx = PipelineContext.calibrated(MiniLm.encode(CALIBRATION, 64), dir);
    Measured rtn = measure(int4Group32(), null, "int4 g32 asymmetric MSE, round-to-nearest");
    Measured gptq = measure(new CalibratedQuantizeSpec(int4Group32(), CalibratedQuantizeSpec.Method.GPTQ, null, null,
        false), ctx, "int4 g32 asymmetric MSE, GPTQ");

    CalibrationReport report = gptq.step().calibration();
    assertThat(report.samples()).isEqualTo(CALIBRATION.size());
    // Every MatMul weight went through GPTQ, and on the calibration inputs each layer's output
    // error is below round-to-nearest's, which GPTQ minimises layer by layer.
    assertThat(report.layers()).hasSize(36).allSatisfy(l -> assertThat(l.gptq()).as(l.tensor())
        .isLessThan(l.roundToNearest()));
    double rtnLayers = report.layers().stream().mapToDouble(CalibrationReport.LayerError::roundToNearest).sum();
    double gptqLayers = report.layers().stream().mapToDouble(CalibrationReport.LayerError::gptq).sum();
    System.out.printf("MiniLM int4 g32: mean relative layer error RTN %.5f, GPTQ %.5f (%.0f%% lower)%n",
        rtnLayers / 36, gptqLayers / 36, 100 * (1 - gptqLayers / rtnLayers));
    assertThat(gptqLayers).isLessThan(0.75 * rtnLayers);

    // The model's output on sentences the calibration never saw.
    assertThat(gptq.embeddingMse()).isLessThan(rtn.embeddingMse());
    assertThat(gptq.meanCosine()).isGreaterThan(rtn.meanCosine()).isGreaterThanOrEqualTo(0.98);

    // Same encoding and size as round-to-nearest: real 4-bit MatMulNBits, not int8 containers.
    assertThat(gptq.step().tensors()).hasSize(39);
    assertThat(gptq.step().tensors().stream().filter(t -> t.encoding().equals("MatMulNBits")).count()).isEqualTo(36);
    // 4-bit codes + an fp32 scale and a 4-bit zero point per 32 weights = 5.125 bits.
    assertThat(gptq.step().tensors()).filteredOn(t -> t.encoding().equals("MatMulNBits"))
        .allSatisfy(t -> assertThat(t.bitsPerWeight()).isBetween(5.12, 5.13));
    assertThat(gptq.sizeRatio()).isCloseTo(rtn.sizeRatio(), org.assertj.core.data.Offset.offset(0.001));
  }
}
