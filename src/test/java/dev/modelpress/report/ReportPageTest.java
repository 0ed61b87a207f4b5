package dev.modelpress.report;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.system.ApiProblem;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/** The report page from report JSON: sections, escaping, warnings and tolerance of unknown fields. */
class ReportPageTest {

  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final String EVIL = "<script>alert(1)</script>";

  static String sampleReport(boolean slower) {
    return """
        {"job":"8f0c","attempt":1,
         "model":{"id":"m1","name":"<img src=x onerror=alert(2)>","sha256":"ab","bytes":4000,"parameters":1000},
         "steps":[{"type":"quantize"}],
         "summary":{"bytesBefore":4000,"bytesAfter":1100,"compressionRatio":3.64,"parameters":1000,
           "meanCosine":0.9991,"maxAbsError":0.02,"top1Agreement":0.98,"accuracyBefore":0.9,"accuracyAfter":0.87},
         "size":{"bytesBefore":4000,"bytesAfter":1100,"compressionRatio":3.64,"parametersBefore":1000,
           "parametersAfter":1010,"bitsPerWeightBefore":32.0,"bitsPerWeightAfter":8.8,"compressedTensors":2,
           "compressedTensorBytesBefore":4000,"compressedTensorBytesAfter":1040,"compressedTensorBitsPerWeight":8.32},
         "layers":[
           {"name":"%1$s","shape":[10,50],"parameters":500,"bytesBefore":2000,"bytesAfter":520,
            "sparsityBefore":0.0,"sparsityAfter":0.1,"sqnrDb":38.5,"mse":1e-5,"steps":[0]},
           {"name":"head.weight","shape":[50,10],"parameters":500,"bytesBefore":2000,"bytesAfter":520,
            "sparsityBefore":0.0,"sparsityAfter":0.0,"sqnrDb":41.0,"mse":2e-6,"steps":[0]}],
         "stepReports":[{"index":0,"type":"quantize","summary":"int8 of 2 tensors","tensors":[],
           "calibration":{"method":"rtn","sensitivity":[{"tensor":"%1$s","error":0.03,"mse":0.1},
                                                        {"tensor":"head.weight","error":0.001,"mse":0.01}]},
           "futureField":{"%1$s":"<b>bold</b>"}}],
         "fidelity":{"samples":100,"batchSize":1,"intraOpThreads":1,
           "outputs":[{"name":"%1$s","elementType":"FLOAT","unitShape":[3],"units":100,"candidateNonFinite":0,
             "originalNonFinite":0,"meanCosine":0.9991,"minCosine":0.99,"maxAbsError":0.02,"meanAbsError":0.001,
             "classifier":{"classes":3,"top1Agreement":0.98,"originalAccuracy":0.9,"candidateAccuracy":0.87,
               "accuracyDeltaPoints":-3.0,
               "perClass":[{"label":0,"support":40,"originalAccuracy":0.9,"candidateAccuracy":0.85,"deltaPoints":-5.0},
                           {"label":1,"support":30,"originalAccuracy":0.9,"candidateAccuracy":0.9,"deltaPoints":0.0},
                           {"label":2,"support":30,"originalAccuracy":0.9,"candidateAccuracy":0.8667,"deltaPoints":-3.33}],
               "originalConfusion":[[36,2,2],[1,27,2],[2,1,27]],
               "candidateConfusion":[[34,4,2],[1,27,2],[3,1,26]]}}],
           "original":{"runs":50,"batchSize":1,"p50Millis":0.5,"p95Millis":0.7,"meanMillis":0.55},
           "candidate":{"runs":50,"batchSize":1,"p50Millis":%2$s,"p95Millis":1.3,"meanMillis":1.1},
           "speedup":%3$s,"slower":%4$s,
           "latencyComparison":{"pairs":50,"medianRatio":2.0,"ratioLow":1.9,"ratioHigh":2.1,"confidence":0.95,
             "verdict":"%5$s"}},
         "timings":{"compressSeconds":0.1,"evaluateSeconds":0.5},
         "provenance":{"service":"dev","onnxruntime":"1.28.0","nd4j":"1.0.0-M2.1","protobuf":"4.28.2","java":"25",
           "inputs":{"model":{"id":"m1","sha256":"aaaa"},"evaluationDataset":{"id":"d1","sha256":"bbbb"},
             "specSha256":"cccc","spec":{}},
           "seeds":{},"reproduce":{"modelId":"m1","steps":[{"type":"quantize"}]},
           "output":{"name":"model.onnx","sha256":"dddd","bytes":1100}},
         "searchFromTheFuture":[{"trial":1,"%1$s":"x"}]}
        """.formatted(JSON.writeValueAsString(EVIL).replace("\"", "").replace("\\", "\\\\"),
        slower ? "1.0" : "0.4", slower ? "0.5" : "1.25", slower, slower ? "SLOWER" : "FASTER");
  }

  static JsonNode report(boolean slower) {
    return JSON.readTree(sampleReport(slower));
  }

  @Test
  void userChosenNamesAreEscapedEverywhere() {
    String html = ReportPage.render(report(false), JSON);

    assertThat(html).doesNotContainIgnoringCase("<script").doesNotContain("<img").doesNotContain("<b>bold");
    assertThat(html).contains("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;",
        "&lt;b&gt;bold&lt;/b&gt;");
    // Every tag in the page is one the renderer writes itself.
    Matcher tags = Pattern.compile("<([a-zA-Z][a-zA-Z0-9]*)").matcher(html);
    while (tags.find()) {
      assertThat(tags.group(1).toLowerCase()).isIn("html", "head", "meta", "title", "style", "body", "main", "header",
          "h1", "h2", "h3", "p", "b", "code", "div", "section", "strong", "a", "ol", "li", "details", "summary", "pre",
          "table", "thead", "tbody", "tr", "th", "td", "svg", "g", "rect", "line", "text", "dl", "dt", "dd", "footer");
    }
  }

  @Test
  void pageHasEverySectionAndOneTableRowPerTensor() {
    String html = ReportPage.render(report(false), JSON);

    assertThat(html).contains("id=\"summary\"", "id=\"size\"", "id=\"layers\"", "id=\"sensitivity\"",
        "id=\"fidelity\"", "id=\"speed\"", "id=\"provenance\"", "id=\"details\"");
    String table = html.substring(html.indexOf("id=\"layers-table\""), html.indexOf("</table>", html.indexOf("id=\"layers-table\"")));
    assertThat(table.split("<tr>").length - 2).isEqualTo(2); // header row + 2 tensors
    assertThat(html).contains("38.50", "head.weight", "8.80", "\u00d73.64", "aaaa", "bbbb", "cccc", "dddd");
    // Per-class delta and confusion change: class 0 lost 2 correct predictions to class 1.
    assertThat(html).contains("-5.00", "true 0, predicted 0: -2", "true 0, predicted 1: +2");
    assertThat(html).contains("Accuracy dropped by 3.00 points");
    // Fields the renderer does not know are shown, not dropped.
    assertThat(html).contains("searchFromTheFuture", "futureField");
    assertThat(html).doesNotContain("id=\"slower-warning\"");
    assertThat(html).contains("Faster: paired time ratio");
  }

  @Test
  void slowerCandidateGetsAProminentWarningAndARedRow() {
    String html = ReportPage.render(report(true), JSON);

    assertThat(html).contains("id=\"slower-warning\"", "the compressed model is slower than the original",
        "Median latency 1.00 ms vs 500.0 \u00b5s", "class=\"badrow\"", "Slower: paired time ratio \u00d72.000");
    // The warning comes before every section, right under the title.
    assertThat(html.indexOf("slower-warning")).isLessThan(html.indexOf("id=\"summary\""));
  }

  @Test
  void reportWithoutEvaluationSaysHowToGetFidelity() {
    ObjectNode r = (ObjectNode) report(false);
    r.remove("fidelity");
    String html = ReportPage.render(r, JSON);
    assertThat(html).contains("No evaluation dataset was given").doesNotContain("id=\"speed\"");
  }

  @Test
  void acceptChoosesJsonByDefaultAndHtmlForBrowsers() {
    assertThat(ReportController.choose(null)).isEqualTo(ReportController.Format.JSON);
    assertThat(ReportController.choose("*/*")).isEqualTo(ReportController.Format.JSON);
    assertThat(ReportController.choose("application/json")).isEqualTo(ReportController.Format.JSON);
    assertThat(ReportController.choose("text/html")).isEqualTo(ReportController.Format.HTML);
    assertThat(ReportController.choose(
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"))
        .isEqualTo(ReportController.Format.HTML);
    assertThat(ReportController.choose("text/*;q=0.5, application/json;q=0.4")).isEqualTo(ReportController.Format.HTML);
    assertThat(ReportController.choose("text/html;q=0.2, */*")).isEqualTo(ReportController.Format.JSON);
    assertThat(ReportController.choose("application/json;q=0, */*")).isEqualTo(ReportController.Format.HTML);
    assertThatThrownBy(() -> ReportController.choose("text/csv"))
        .isInstanceOfSatisfying(ApiProblem.class, p -> assertThat(p.kind()).isEqualTo(ApiProblem.Kind.NOT_ACCEPTABLE));
    assertThatThrownBy(() -> ReportController.choose("not a type"))
        .isInstanceOfSatisfying(ApiProblem.class, p -> assertThat(p.kind()).isEqualTo(ApiProblem.Kind.INVALID_PARAMETER));
  }
}
