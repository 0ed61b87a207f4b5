package dev.modelpress.testing;

import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The whole service on a random port with one worker polling every 500 ms, for end-to-end job tests
 * through the HTTP API: a subclass gets {@link #api}, a temporary directory {@link #tmp}, and the
 * steps every such test repeats (upload a model, upload a dataset, run a job to success and fetch
 * its model and report).
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.concurrency=1",
        "modelpress.worker.poll-interval=500ms"})
@ActiveProfiles("test")
public abstract class WorkerApiTest {

  private static final JsonMapper JSON = JsonMapper.builder().build();

  @LocalServerPort int port;
  @TempDir protected Path tmp;
  protected Api api;

  @BeforeEach
  void connect() {
    api = new Api(port);
  }

  /** Uploads a model file and returns its id; fails unless the service accepts it (201). */
  protected String uploadModel(Path file) {
    return created(api.postFile("/v1/models", file));
  }

  /** Writes {@code arrays} as a compressed .npz, uploads it as dataset {@code name} and returns its id (201). */
  protected String uploadDataset(String name, List<NdArray> arrays) throws IOException {
    Path npz = tmp.resolve(name + ".npz");
    NpzWriter.write(npz, arrays, true);
    return created(api.postFile("/v1/datasets?name=" + name, npz));
  }

  /**
   * Submits a job (202), waits up to five minutes for it to succeed, downloads its {@code model.onnx}
   * to {@code model} and returns its parsed {@code report.json}.
   */
  protected JsonNode runJob(String body, Path model) {
    Api.Response submitted = api.postJson("/v1/jobs", body);
    expect(submitted, 202);
    JsonNode job = api.awaitJob(submitted.json().get("id").asString(), Duration.ofMinutes(5));
    if (!job.get("state").asString().equals("SUCCEEDED")) {
      throw new AssertionError("the job did not succeed: " + job);
    }
    JsonNode report = null;
    for (JsonNode a : job.get("artifacts")) {
      if (a.get("name").asString().equals("model.onnx")) {
        api.download(a.get("href").asString(), model);
      } else if (a.get("name").asString().equals("report.json")) {
        report = JSON.readTree(api.getBytes(a.get("href").asString()).body());
      }
    }
    return report;
  }

  private static String created(Api.Response r) {
    expect(r, 201);
    return r.json().get("id").asString();
  }

  private static void expect(Api.Response r, int status) {
    if (r.status() != status) {
      throw new AssertionError("expected " + status + ", got " + r.status() + ": " + r.body());
    }
  }
}
