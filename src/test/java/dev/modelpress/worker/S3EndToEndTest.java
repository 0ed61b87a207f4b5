package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.storage.S3ArtifactStore;
import dev.modelpress.storage.S3MockServer;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.ActiveProfiles;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import tools.jackson.databind.JsonNode;

/**
 * The service configured for S3 (against an S3-protocol server the test starts): uploads land in
 * the bucket, the worker fetches the model from it, and the artifacts it writes there download
 * intact and run in ONNX Runtime.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.storage.type=s3",
        "modelpress.storage.s3.access-key=test", "modelpress.storage.s3.secret-key=test"})
@ActiveProfiles("test")
class S3EndToEndTest {

  static final String BUCKET = "modelpress-e2e";

  @DynamicPropertySource
  static void s3(DynamicPropertyRegistry registry) {
    S3MockServer server = S3MockServer.get();
    server.createBucket(BUCKET);
    registry.add("modelpress.storage.s3.endpoint", () -> server.endpoint().toString());
    registry.add("modelpress.storage.s3.bucket", () -> BUCKET);
  }

  @LocalServerPort int port;
  @Autowired ArtifactStore store;
  @TempDir Path tmp;

  @Test
  void aJobRunsEntirelyAgainstS3() throws Exception {
    assertThat(store).isInstanceOf(S3ArtifactStore.class);
    Api api = new Api(port);
    Path model = OnnxGraphBuilder.opset(13).input("x", 1, 32)
        .initializer("w1", OnnxGraphBuilder.randomFloats(5, 32 * 64, 0.5f), 32, 64).matMul("x", "w1", "h")
        .relu("h", "r")
        .initializer("w2", OnnxGraphBuilder.randomFloats(6, 64 * 10, 0.5f), 64, 10).matMul("r", "w2", "y")
        .output("y").writeTo(tmp);
    Api.Response uploaded = api.postFile("/v1/models", model);
    assertThat(uploaded.status()).as(uploaded.body()).isEqualTo(201);
    String modelId = uploaded.json().get("id").asString();
    assertThat(keys("models/" + modelId + "/")).containsExactly("models/" + modelId + "/model.onnx");

    String jobId = api.postJson("/v1/jobs", "{\"modelId\":\"" + modelId + "\",\"steps\":[{\"type\":\"quantize\"}]}")
        .json().get("id").asString();
    JsonNode job = api.awaitJob(jobId, Duration.ofMinutes(2));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    assertThat(keys("jobs/" + jobId + "/")).containsExactlyInAnyOrder(
        "jobs/" + jobId + "/attempt-1/model.onnx", "jobs/" + jobId + "/attempt-1/report.json");

    Path downloaded = tmp.resolve("out.onnx");
    api.download("/v1/jobs/" + jobId + "/artifacts/model.onnx", downloaded);
    assertThat(Files.size(downloaded)).isLessThan(Files.size(model) / 2);
    float[] x = OnnxGraphBuilder.randomFloats(7, 32, 1f);
    try (OrtRunner before = new OrtRunner(model); OrtRunner after = new OrtRunner(downloaded)) {
      float[] a = before.run("y", "x", x, 1, 32);
      float[] b = after.run("y", "x", x, 1, 32);
      for (int i = 0; i < a.length; i++) {
        assertThat(b[i]).isCloseTo(a[i], org.assertj.core.data.Offset.offset(0.05f * (1 + Math.abs(a[i]))));
      }
    }
  }

  private java.util.List<String> keys(String prefix) {
    return S3MockServer.get().client().listObjectsV2(ListObjectsV2Request.builder().bucket(BUCKET).prefix(prefix).build())
        .contents().stream().map(o -> o.key()).toList();
  }
}
