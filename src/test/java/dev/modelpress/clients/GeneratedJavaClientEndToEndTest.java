package dev.modelpress.clients;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.client.ApiClient;
import dev.modelpress.client.ApiException;
import dev.modelpress.client.api.JobArtifactsApi;
import dev.modelpress.client.api.JobsApi;
import dev.modelpress.client.api.ModelUploadApi;
import dev.modelpress.client.model.Artifact;
import dev.modelpress.client.model.Job;
import dev.modelpress.client.model.JobRequest;
import dev.modelpress.client.model.JobState;
import dev.modelpress.client.model.JobStep;
import dev.modelpress.client.model.Model;
import dev.modelpress.client.model.ModelFormat;
import dev.modelpress.client.model.QuantizeWeights;
import dev.modelpress.testing.MiniLm;
import java.io.File;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.ActiveProfiles;

/**
 * The Java client generated from {@code openapi.yaml} (by the build, into
 * {@code target/generated-test-sources/client}) against the running service with a real worker:
 * upload the real all-MiniLM-L6-v2 as a raw octet-stream body, submit an int8 job with an
 * {@code Idempotency-Key}, wait for it, download the model and check its SHA-256 against the one
 * the API reported. No hand-written HTTP: if the contract and the server drift apart, this breaks.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.concurrency=1",
        "modelpress.worker.poll-interval=500ms"})
@ActiveProfiles("test")
class GeneratedJavaClientEndToEndTest {

  private static final Duration JOB_TIMEOUT = Duration.ofMinutes(5);

  @LocalServerPort int port;

  @Test
  void generatedClientUploadsQuantizesAndDownloadsMiniLmWithMatchingSha256() throws Exception {
    ApiClient client = new ApiClient().setBasePath("http://localhost:" + port);
    client.setBearerToken(dev.modelpress.testing.Api.TEST_ADMIN_KEY);
    Path original = MiniLm.modelFile();

    Model model = new ModelUploadApi(client).uploadModel(original.toFile(), "minilm", null);
    assertThat(client.getStatusCode()).isEqualTo(201);
    assertThat(model.getFormat()).isEqualTo(ModelFormat.ONNX);
    assertThat(model.getBytes()).isEqualTo(Files.size(original));
    assertThat(model.getSha256()).isEqualTo(sha256(original));
    assertThat(model.getParameterCount()).isBetween(22_000_000L, 23_500_000L);

    JobsApi jobs = new JobsApi(client);
    JobRequest request = new JobRequest()
        .modelId(model.getId())
        .steps(List.of(new JobStep().type("quantize")
            .weights(new QuantizeWeights().bits(8).symmetric(true).granularity("channel"))));
    String key = "client-e2e-" + UUID.randomUUID();
    Job submitted = jobs.submitJob(request, key);
    assertThat(client.getStatusCode()).isEqualTo(202);
    // The Idempotency-Key header really reaches the server: a retry returns the same job, with 200.
    Job replay = jobs.submitJob(request, key);
    assertThat(client.getStatusCode()).isEqualTo(200);
    assertThat(replay.getId()).isEqualTo(submitted.getId());

    Job done = await(jobs, submitted.getId());
    assertThat(done.getState()).as("%s", done).isEqualTo(JobState.SUCCEEDED);
    assertThat(done.getReport().getBytesBefore()).isEqualTo(Files.size(original));
    assertThat(done.getReport().getCompressionRatio()).isGreaterThan(3.3);

    Artifact artifact = done.getArtifacts().stream()
        .filter(a -> a.getName().equals("model.onnx")).findFirst().orElseThrow();
    File downloaded = new JobArtifactsApi(client).downloadArtifact(done.getId(), "model.onnx", null, null);
    try {
      assertThat(client.getStatusCode()).isEqualTo(200);
      assertThat(Files.size(downloaded.toPath())).isEqualTo(artifact.getBytes());
      assertThat(sha256(downloaded.toPath())).isEqualTo(artifact.getSha256());
      assertThat(artifact.getBytes()).isLessThanOrEqualTo((long) (Files.size(original) * 0.30));
    } finally {
      Files.deleteIfExists(downloaded.toPath());
    }
  }

  @Test
  void generatedClientSurfacesProblemDocumentsAsApiExceptions() {
    ApiClient client = new ApiClient().setBasePath("http://localhost:" + port);
    client.setBearerToken(dev.modelpress.testing.Api.TEST_ADMIN_KEY);
    JobRequest unknownModel = new JobRequest()
        .modelId(UUID.randomUUID())
        .steps(List.of(new JobStep().type("prune").sparsity(0.5)));

    assertThatThrownBy(() -> new JobsApi(client).submitJob(unknownModel, null))
        .isInstanceOfSatisfying(ApiException.class, e -> {
          assertThat(e.getCode()).isEqualTo(422);
          assertThat(e.getResponseBody())
              .contains("\"type\":\"https://modelpress.dev/problems/validation-failed\"")
              .contains("\"field\":\"modelId\"");
        });
  }

  /** The paths the Dockerfile's HEALTHCHECK and the Helm chart's probes call answer on a running service. */
  @Test
  void probePathsUsedByDockerfileAndChartAnswerUp() throws Exception {
    String healthcheck = Files.readAllLines(Path.of("Dockerfile")).stream()
        .filter(l -> l.contains("http://127.0.0.1:")).findFirst().orElseThrow();
    Matcher m = Pattern.compile("http://127\\.0\\.0\\.1:(\\d+)(/\\S+)").matcher(healthcheck);
    assertThat(m.find()).as(healthcheck).isTrue();
    HttpClient http = HttpClient.newHttpClient();
    for (String path : List.of(m.group(2), "/actuator/health/liveness", "/actuator/health/readiness")) {
      HttpResponse<String> response = http.send(
          HttpRequest.newBuilder(URI.create("http://localhost:" + port + path)).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(response.statusCode()).as(path).isEqualTo(200);
      assertThat(response.body()).as(path).contains("\"status\":\"UP\"");
    }
  }

  private static Job await(JobsApi jobs, UUID id) throws Exception {
    long deadline = System.nanoTime() + JOB_TIMEOUT.toNanos();
    Job job = jobs.getJob(id);
    while (job.getState() == JobState.QUEUED || job.getState() == JobState.RUNNING) {
      assertThat(System.nanoTime()).as("job %s still %s", id, job.getState()).isLessThan(deadline);
      Thread.sleep(200);
      job = jobs.getJob(id);
    }
    return job;
  }

  private static String sha256(Path file) throws Exception {
    MessageDigest digest = MessageDigest.getInstance("SHA-256");
    try (InputStream in = Files.newInputStream(file)) {
      byte[] buffer = new byte[1 << 16];
      for (int n; (n = in.read(buffer)) > 0; ) {
        digest.update(buffer, 0, n);
      }
    }
    return HexFormat.of().formatHex(digest.digest());
  }
}
