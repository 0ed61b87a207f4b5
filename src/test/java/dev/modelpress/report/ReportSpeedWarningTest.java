package dev.modelpress.report;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.evaluation.EvaluationOptions;
import dev.modelpress.evaluation.FidelityEvaluator;
import dev.modelpress.evaluation.FidelityReport;
import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A deliberately slower "compressed" model (the same classifier behind 16 chained MatMuls by the
 * identity) measured in real ONNX Runtime runs: the report JSON says slower and the page warns.
 */
class ReportSpeedWarningTest {

  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final int WIDTH = 384;

  @TempDir Path dir;

  @Test
  void slowerCandidateIsFlaggedInTheReportJsonAndWarnedAboutOnThePage() throws Exception {
    float[] head = OnnxGraphBuilder.randomFloats(1, WIDTH * 10, 0.1f);
    Path fast = OnnxGraphBuilder.opset(13).inputSymbolic("x", TensorProto.DataType.FLOAT, "batch", WIDTH)
        .initializer("head.weight", head, WIDTH, 10).matMul("x", "head.weight", "logits").output("logits")
        .writeTo(dir);
    float[] identity = new float[WIDTH * WIDTH];
    for (int i = 0; i < WIDTH; i++) {
      identity[i * WIDTH + i] = 1;
    }
    OnnxGraphBuilder slow = OnnxGraphBuilder.opset(13).inputSymbolic("x", TensorProto.DataType.FLOAT, "batch", WIDTH)
        .initializer("head.weight", head, WIDTH, 10).initializer("identity", identity, WIDTH, WIDTH);
    String previous = "x";
    for (int i = 0; i < 16; i++) {
      slow.matMul(previous, "identity", "h" + i);
      previous = "h" + i;
    }
    Path slowFile = slow.matMul(previous, "head.weight", "logits").output("logits").writeTo(dir);
    ByteBuffer x = ByteBuffer.allocate(8 * WIDTH * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : OnnxGraphBuilder.randomFloats(2, 8 * WIDTH, 1f)) {
      x.putFloat(v);
    }
    List<NdArray> data = List.of(new NdArray("x", DType.FLOAT32, new long[] {8, WIDTH}, x.flip()));

    FidelityReport fidelity;
    try (FidelityEvaluator evaluator = new FidelityEvaluator()) {
      fidelity = evaluator.compare(fast, slowFile, data, EvaluationOptions.defaults());
    }
    // The report as the worker writes it: the evaluator's record serialised under "fidelity".
    Map<String, Object> report = new LinkedHashMap<>();
    report.put("job", "speed-check");
    report.put("summary", Map.of("bytesBefore", 1000, "bytesAfter", 1000, "compressionRatio", 1.0));
    report.put("fidelity", fidelity);
    JsonNode json = JSON.readTree(JSON.writeValueAsString(report));
    String html = ReportPage.render(json, JSON);

    JsonNode f = json.get("fidelity");
    System.out.printf("fast p50 %.4f ms, slow p50 %.4f ms, paired ratio %s%n", f.get("original").get("p50Millis").asDouble(),
        f.get("candidate").get("p50Millis").asDouble(), f.get("latencyComparison"));
    assertThat(f.get("slower").asBoolean()).isTrue();
    assertThat(f.get("latencyComparison").get("verdict").asString()).isEqualTo("SLOWER");
    assertThat(f.get("latencyComparison").get("ratioLow").asDouble()).isGreaterThan(1.5);
    assertThat(f.get("candidate").get("p50Millis").asDouble()).isGreaterThan(f.get("original").get("p50Millis").asDouble());
    assertThat(f.get("speedup").asDouble()).isLessThan(0.7);
    assertThat(html).contains("id=\"slower-warning\"", "Warning: the compressed model is slower than the original",
        "class=\"badrow\"", "Slower: paired time ratio");
    assertThat(html.indexOf("id=\"slower-warning\"")).isLessThan(html.indexOf("id=\"summary\""));
  }
}
