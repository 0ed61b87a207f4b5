package dev.modelpress.report;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.modelpress.testing.Api;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The HTML report of a real job rendered by a real browser (headless Chromium, Debian's
 * {@code chromium} package, installed by {@code .ci/run}): the charts have drawn bars of real
 * size, the tensor table has a row per tensor, the page fits the window, and the screenshot is a
 * picture rather than a blank page. Skipped only when no Chromium binary exists.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.poll-interval=500ms"})
@ActiveProfiles("test")
class ReportBrowserTest {

  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final int WINDOW_WIDTH = 1100;

  /**
   * Appended by the test to a copy of the page (the served page has no script and its CSP forbids
   * one): measures what the browser laid out and writes it into the DOM for {@code --dump-dom}.
   */
  private static final String MEASURE = """
      <script>
      (() => {
        const box = e => e.getBoundingClientRect();
        const charts = [...document.querySelectorAll('svg.chart')].map(s => ({
          id: s.closest('section') ? s.closest('section').id : '',
          width: box(s).width, height: box(s).height,
          bars: [...s.querySelectorAll('rect.bar, rect.cell')].filter(r => box(r).width > 0 && box(r).height > 0).length,
          labels: [...s.querySelectorAll('text.label')].filter(t => box(t).width > 0).length}));
        const tensorRows = document.querySelectorAll('#layers-table tbody tr').length;
        const tensorNames = [...document.querySelectorAll('#layers-table td.name')].map(td => td.textContent);
        const out = document.createElement('pre');
        out.id = 'measured';
        out.textContent = JSON.stringify({charts, tensorRows, tensorNames,
          scripts: document.scripts.length,
          scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth});
        document.body.appendChild(out);
      })();
      </script>
      """;

  private static Path chromium;

  @LocalServerPort int port;
  @TempDir Path tmp;

  @BeforeAll
  static void findChromium() {
    for (String candidate : List.of("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")) {
      if (Files.isExecutable(Path.of(candidate))) {
        chromium = Path.of(candidate);
        return;
      }
    }
  }

  @Test
  void chromiumDrawsTheChartsAndTablesOfARealJobReport() throws Exception {
    assumeTrue(chromium != null, "no Chromium binary (/usr/bin/chromium): install Debian's 'chromium' package"
        + " (.ci/run does) to run the browser test");
    Api api = new Api(port);
    Path model = ReportFixtures.classifier(tmp);
    String modelId = api.postFile("/v1/models", model).json().get("id").asString();
    String datasetId = api.postFile("/v1/datasets", ReportFixtures.labelledDataset(model, tmp, 300))
        .json().get("id").asString();
    Api.Response submitted = api.postJson("/v1/jobs", """
        {"modelId":"%s","evaluationDatasetId":"%s","steps":[{"type":"prune","sparsity":0.4,"scope":"layer"},
         {"type":"quantize","weights":{"bits":8,"symmetric":false,"granularity":"tensor"}}]}"""
        .formatted(modelId, datasetId));
    JsonNode job = api.awaitJob(submitted.json().get("id").asString(), Duration.ofMinutes(3));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    String url = api.base() + "/v1/jobs/" + job.get("id").asString() + "/report";
    // The endpoint needs the tenant's API key, which Chromium's command line cannot send: fetch the
    // page as a browser would (Accept: text/html) with the key, and let Chromium render exactly those bytes.
    String page = new String(api.getBytes(url.substring(api.base().length()), "Accept", "text/html").body(),
        StandardCharsets.UTF_8);
    Path servedFile = tmp.resolve("served.html");
    Files.writeString(servedFile, page);
    String servedUrl = servedFile.toUri().toString();

    // 1. The served page as the endpoint returned it: a screenshot.
    Path png = Path.of("target", "report-screenshot.png").toAbsolutePath();
    Files.createDirectories(png.getParent());
    Files.deleteIfExists(png);
    run("--screenshot=" + png, "--window-size=" + WINDOW_WIDTH + ",2400", "--hide-scrollbars", servedUrl);
    assertThat(png).exists();
    assertThat(Files.size(png)).as("screenshot bytes").isGreaterThan(30_000);
    BufferedImage image = ImageIO.read(png.toFile());
    assertThat(image.getWidth()).isEqualTo(WINDOW_WIDTH);
    Set<Integer> colours = new HashSet<>();
    for (int y = 0; y < image.getHeight(); y += 2) {
      for (int x = 0; x < image.getWidth(); x += 2) {
        colours.add(image.getRGB(x, y));
      }
    }
    // Text, bars in several colours, anti-aliasing: a blank or error page has a handful.
    assertThat(colours.size()).as("distinct colours in the screenshot").isGreaterThan(200);

    // 2. The served DOM: the page the endpoint returned to a browser, with no script in it.
    String served = run("--dump-dom", servedUrl);
    assertThat(served).contains("id=\"layers-table\"", "&lt;script&gt;alert(1)&lt;/script&gt;")
        .doesNotContain("<script");

    // 3. Layout measured by the browser on a copy of the page with the measuring script appended.
    Files.writeString(png.resolveSibling("report.html"), page); // kept next to the screenshot for people
    Path copy = tmp.resolve("report.html");
    Files.writeString(copy, page.replace("</body>", MEASURE + "</body>"));
    String dom = run("--window-size=" + WINDOW_WIDTH + ",2400", "--dump-dom", copy.toUri().toString());
    Matcher m = Pattern.compile("<pre id=\"measured\">(.*?)</pre>", Pattern.DOTALL).matcher(dom);
    assertThat(m.find()).as("measurement in the dumped DOM").isTrue();
    JsonNode measured = JSON.readTree(m.group(1).replace("&quot;", "\"").replace("&amp;", "&")
        .replace("&lt;", "<").replace("&gt;", ">"));
    System.out.println("browser measurement: " + measured);

    assertThat(measured.get("tensorRows").asInt()).isEqualTo(2);
    assertThat(measured.get("tensorNames").get(0).asString()).isEqualTo(ReportFixtures.EVIL);
    assertThat(measured.get("scripts").asInt()).as("only the measuring script runs").isEqualTo(1);
    assertThat(measured.get("scrollWidth").asInt()).as("no horizontal scrolling")
        .isLessThanOrEqualTo(measured.get("innerWidth").asInt());
    List<String> drawn = new ArrayList<>();
    for (JsonNode chart : measured.get("charts")) {
      assertThat(chart.get("width").asDouble()).as(chart.toString()).isGreaterThan(300);
      assertThat(chart.get("height").asDouble()).as(chart.toString()).isGreaterThan(40);
      assertThat(chart.get("bars").asInt()).as(chart.toString()).isPositive();
      drawn.add(chart.get("id").asString());
    }
    // Bytes before/after and sparsity (size, layers), SQNR, per-class change and confusion change
    // (fidelity), latency (speed).
    assertThat(drawn).containsSubsequence("size", "layers", "layers", "fidelity", "fidelity", "speed");
    JsonNode bytesChart = measured.get("charts").get(0);
    assertThat(bytesChart.get("bars").asInt()).isEqualTo(4); // 2 tensors × before/after
    assertThat(bytesChart.get("labels").asInt()).isEqualTo(2);
  }

  /** Runs headless Chromium with the flags a sandboxed CI machine needs; returns its stdout. */
  private String run(String... args) throws IOException, InterruptedException {
    Path profile = Files.createTempDirectory(tmp, "chromium-profile");
    List<String> command = new ArrayList<>(List.of(chromium.toString(), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + profile));
    command.addAll(List.of(args));
    Path stdout = tmp.resolve("chromium-" + System.nanoTime() + ".out");
    Path stderr = tmp.resolve("chromium-" + System.nanoTime() + ".err");
    Process p = new ProcessBuilder(command).redirectOutput(stdout.toFile()).redirectError(stderr.toFile()).start();
    if (!p.waitFor(90, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("chromium did not finish in 90 s: " + Files.readString(stderr));
    }
    assertThat(p.exitValue()).as("chromium exit; stderr: %s", Files.readString(stderr)).isZero();
    return Files.readString(stdout);
  }
}
