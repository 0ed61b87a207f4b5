package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.QuantizeSpec.Granularity;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** int8 weight quantization of the real all-MiniLM-L6-v2 encoder (opset 11), checked in ONNX Runtime. */
class MiniLmQuantizationTest {

  @TempDir Path dir;

  @Test
  void perChannelSymmetricInt8KeepsEmbeddingsAndShrinksTheFileToAQuarter() throws Exception {
    PipelineResult r = OnnxPipeline.run(OnnxModels.read(MiniLm.path()),
        List.of(QuantizeSpec.int8(true, Granularity.CHANNEL)), Progress.NONE);
    // 36 MatMul weights and 3 embedding tables (Gather:0); biases and LayerNorm vectors stay float.
    assertThat(r.steps().get(0).tensors()).hasSize(39);
    // Opset 11 has no per-axis DequantizeLinear: the Cast/Mul chain is used and the opset kept.
    assertThat(Models.opTypes(r.model())).doesNotContain("DequantizeLinear");
    assertThat(OnnxModels.defaultOpset(r.model())).isEqualTo(11);
    Measured m = measure(r.model(), "per-channel symmetric");
    assertThat(m.sizeRatio()).isLessThanOrEqualTo(0.30);
    assertThat(m.meanCosine()).isGreaterThanOrEqualTo(0.99);
  }

  @Test
  void perTensorAsymmetricInt8UsesOpset11DequantizeLinearAndStillRuns() throws Exception {
    PipelineResult r = OnnxPipeline.run(OnnxModels.read(MiniLm.path()),
        List.of(QuantizeSpec.int8(false, Granularity.TENSOR)), Progress.NONE);
    assertThat(Models.opTypes(r.model()).stream().filter("DequantizeLinear"::equals).count()).isEqualTo(39);
    Measured m = measure(r.model(), "per-tensor asymmetric");
    assertThat(m.sizeRatio()).isLessThanOrEqualTo(0.30);
    assertThat(m.meanCosine()).isGreaterThanOrEqualTo(0.97);
  }

  record Measured(double sizeRatio, double meanCosine) {}

  private Measured measure(ModelProto quantized, String label) throws Exception {
    Path out = Files.createTempFile(dir, "minilm-int8", ".onnx");
    OnnxModels.write(quantized, out);
    double ratio = (double) Files.size(out) / Files.size(MiniLm.path());
    OnnxModels.read(out);

    Random random = new Random(2024);
    double sum = 0;
    double worst = 1;
    int samples = 20;
    try (OrtRunner fp32 = new OrtRunner(MiniLm.path()); OrtRunner int8 = new OrtRunner(out)) {
      for (int s = 0; s < samples; s++) {
        var input = MiniLm.randomInput(random, 8 + random.nextInt(57));
        double c = MiniLm.cosine(fp32.run("last_hidden_state", input), int8.run("last_hidden_state", input));
        sum += c;
        worst = Math.min(worst, c);
      }
    }
    double mean = sum / samples;
    System.out.printf("MiniLM int8 %s: file %.1f%% of fp32, mean cosine %.5f, worst %.5f%n",
        label, 100 * ratio, mean, worst);
    return new Measured(ratio, mean);
  }
}
