package dev.modelpress.tenant;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzWriter;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;

/**
 * Tenant alpha owns a model, a dataset and a finished job with artifacts; tenant beta, with a
 * valid key of its own, gets 404 for every one of them by every verb (exactly as for ids that
 * never existed), sees none of them in listings, cannot reference them in a job, and does not
 * collide with alpha's idempotency keys. Alpha still sees everything afterwards.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
@ActiveProfiles("test")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TenantIsolationTest {

  private static final String NOT_FOUND = "https://modelpress.dev/problems/not-found";

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;
  @TempDir static Path tmp;

  Api alpha;
  Api beta;
  String modelId;
  String datasetId;
  String jobId;
  String betaModelId;

  @BeforeAll
  void alphaOwnsAModelADatasetAndAFinishedJob() throws Exception {
    Api admin = new Api(port);
    alpha = Tenants.tenantWithKey(admin, "alpha", null);
    beta = Tenants.tenantWithKey(admin, "beta", null);
    modelId = upload(alpha, "alpha-model");
    betaModelId = upload(beta, "beta-model");
    Path npz = tmp.resolve("data.npz");
    ByteBuffer b = ByteBuffer.allocate(10 * 8 * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 80; i++) {
      b.putFloat(i);
    }
    NpzWriter.write(npz, List.of(new NdArray("x", DType.FLOAT32, new long[] {10, 8}, b.flip())), false);
    Api.Response dataset = alpha.postFile("/v1/datasets", npz);
    assertThat(dataset.status()).as(dataset.body()).isEqualTo(201);
    datasetId = dataset.json().get("id").asString();
    Api.Response job = alpha.postJson("/v1/jobs", jobBody(modelId), "shared-key-1");
    assertThat(job.status()).as(job.body()).isEqualTo(202);
    jobId = job.json().get("id").asString();
    JsonNode done = alpha.awaitJob(jobId, Duration.ofMinutes(2));
    assertThat(done.get("state").asString()).as(done.toString()).isEqualTo("SUCCEEDED");
    assertThat(done.get("artifacts")).hasSize(2);
  }

  @Test
  void anotherTenantsModelIs404ForEveryVerb() {
    assertNotFound(beta.get("/v1/models/" + modelId));
    assertNotFound(beta.get("/v1/models/" + modelId + "/tensors"));
    assertNotFound(beta.delete("/v1/models/" + modelId));
    assertThat(alpha.get("/v1/models/" + modelId).status()).as("still there for its owner").isEqualTo(200);
  }

  @Test
  void anotherTenantsDatasetIs404ForEveryVerb() {
    assertNotFound(beta.get("/v1/datasets/" + datasetId));
    assertNotFound(beta.delete("/v1/datasets/" + datasetId));
    assertThat(alpha.get("/v1/datasets/" + datasetId).status()).isEqualTo(200);
  }

  @Test
  void anotherTenantsJobArtifactsAndReportAre404() {
    assertNotFound(beta.get("/v1/jobs/" + jobId));
    assertNotFound(beta.get("/v1/jobs/" + jobId + "/artifacts/model.onnx"));
    assertNotFound(beta.get("/v1/jobs/" + jobId + "/artifacts/report.json"));
    assertThat(beta.getBytes("/v1/jobs/" + jobId + "/artifacts/model.onnx", "Range", "bytes=0-9").statusCode())
        .isEqualTo(404);
    assertThat(alpha.getBytes("/v1/jobs/" + jobId + "/artifacts/model.onnx", "Range", "bytes=0-9").statusCode())
        .isEqualTo(206);
    assertThat(alpha.get("/v1/jobs/" + jobId + "/artifacts/report.json").status()).isEqualTo(200);
  }

  @Test
  void anotherTenantsReportEventsAndDeliveriesAre404() {
    for (String path : List.of("/report", "/events", "/deliveries")) {
      assertNotFound(beta.get("/v1/jobs/" + jobId + path));
    }
    assertThat(alpha.get("/v1/jobs/" + jobId + "/report").status()).isEqualTo(200);
    assertThat(alpha.get("/v1/jobs/" + jobId + "/deliveries").status()).isEqualTo(200);
  }

  @Test
  void cancellingAnotherTenantsFinishedJobIs404Not409() {
    // For its owner the finished job is a 409; a 409 for beta would reveal that the job exists.
    assertThat(alpha.postJson("/v1/jobs/" + jobId + "/cancel", "").status()).isEqualTo(409);
    assertNotFound(beta.postJson("/v1/jobs/" + jobId + "/cancel", ""));
  }

  @Test
  void cancellingAnotherTenantsActiveJobIs404AndLeavesItAlone() {
    // Whether the worker has picked it up yet or not, beta's cancel must neither answer nor act.
    Api.Response queued = alpha.postJson("/v1/jobs", jobBody(modelId));
    String id = queued.json().get("id").asString();
    assertNotFound(beta.postJson("/v1/jobs/" + id + "/cancel", ""));
    JsonNode after = alpha.awaitJob(id, Duration.ofMinutes(2));
    assertThat(after.get("state").asString()).as("not cancelled by beta").isEqualTo("SUCCEEDED");
    assertThat(after.get("cancelRequested").asBoolean()).isFalse();
  }

  @Test
  void listingsShowOnlyTheCallersRows() {
    assertThat(ids(beta.get("/v1/models"))).containsExactly(betaModelId);
    assertThat(ids(beta.get("/v1/datasets"))).isEmpty();
    assertThat(ids(beta.get("/v1/jobs"))).doesNotContain(jobId);
    assertThat(beta.get("/v1/jobs?modelId=" + modelId).json().get("total").asLong()).isZero();
    assertThat(ids(alpha.get("/v1/models"))).containsExactly(modelId);
    assertThat(ids(alpha.get("/v1/jobs?modelId=" + modelId))).contains(jobId);
  }

  @Test
  void aJobCannotReferenceAnotherTenantsModelOrDataset() {
    Api.Response foreignModel = beta.postJson("/v1/jobs", jobBody(modelId));
    assertThat(foreignModel.status()).isEqualTo(422);
    assertThat(foreignModel.json().get("errors").get(0).get("field").asString()).isEqualTo("modelId");
    Api.Response foreignData = beta.postJson("/v1/jobs", """
        {"modelId":"%s","steps":[{"type":"quantize"}],"evaluationDatasetId":"%s"}""".formatted(betaModelId, datasetId));
    assertThat(foreignData.status()).isEqualTo(422);
    assertThat(foreignData.json().get("errors").get(0).get("field").asString()).isEqualTo("evaluationDatasetId");
    // Same answer as for ids that never existed: nothing is revealed.
    Api.Response nobody = beta.postJson("/v1/jobs", jobBody(UUID.randomUUID().toString()));
    assertThat(nobody.json().get("errors").get(0).get("message").asString().replaceAll("[0-9a-f-]{36}", "ID"))
        .isEqualTo(foreignModel.json().get("errors").get(0).get("message").asString().replaceAll("[0-9a-f-]{36}", "ID"));
  }

  @Test
  void idempotencyKeysArePerTenant() {
    // Beta reuses alpha's key with a different body: a new job of its own, not alpha's job, not a 409.
    Api.Response r = beta.postJson("/v1/jobs", jobBody(betaModelId), "shared-key-1");
    assertThat(r.status()).as(r.body()).isEqualTo(202);
    assertThat(r.json().get("id").asString()).isNotEqualTo(jobId);
    Api.Response replay = beta.postJson("/v1/jobs", jobBody(betaModelId), "shared-key-1");
    assertThat(replay.status()).isEqualTo(200);
    assertThat(replay.json().get("id").asString()).isEqualTo(r.json().get("id").asString());
  }

  @Test
  void foreignIdsAnswerExactlyLikeMissingOnes() {
    Api.Response foreign = beta.get("/v1/models/" + modelId);
    Api.Response missing = beta.get("/v1/models/" + UUID.randomUUID());
    assertThat(foreign.status()).isEqualTo(missing.status());
    assertThat(foreign.json().get("type").asString()).isEqualTo(missing.json().get("type").asString());
    assertThat(foreign.json().get("title").asString()).isEqualTo(missing.json().get("title").asString());
  }

  @Test
  void workersReadOnlyTheJobOwnersInputs() {
    // A job of beta's naming alpha's model (only possible by writing the row directly) fails
    // instead of compressing another tenant's model for beta.
    UUID forged = UUID.randomUUID();
    jdbc.sql("""
            insert into jobs (id, owner, state, model_id, spec, max_attempts, created_at, updated_at)
            select ?, 'beta', 'QUEUED', model_id, spec, 1, now(), now() from jobs where id = ?""")
        .params(forged, UUID.fromString(jobId)).update();
    jdbc.sql("select pg_notify('modelpress_jobs', ?)").param(forged.toString()).query(Object.class).optional();
    try {
      JsonNode done = beta.awaitJob(forged.toString(), Duration.ofMinutes(2));
      assertThat(done.get("state").asString()).as(done.toString()).isEqualTo("FAILED");
      assertThat(done.get("error").get("detail").asString()).contains("model " + modelId);
      assertThat(done.get("artifacts")).isEmpty();
    } finally {
      // The forged row names alpha's model; keep it out of the listing tests.
      jdbc.sql("delete from jobs where id = ?").param(forged).update();
    }
  }

  private static void assertNotFound(Api.Response r) {
    assertThat(r.status()).as(r.body()).isEqualTo(404);
    assertThat(r.problemType()).isEqualTo(NOT_FOUND);
  }

  private static List<String> ids(Api.Response page) {
    assertThat(page.status()).as(page.body()).isEqualTo(200);
    return page.json().get("items").findValuesAsString("id");
  }

  private static String jobBody(String model) {
    return "{\"modelId\":\"" + model + "\",\"steps\":[{\"type\":\"quantize\"}]}";
  }

  private String upload(Api api, String name) throws java.io.IOException {
    Path model = OnnxGraphBuilder.opset(13).input("x", 1, 8)
        .initializer("fc1.weight", OnnxGraphBuilder.randomFloats(name.hashCode(), 64, 1f), 8, 8)
        .matMul("x", "fc1.weight", "y")
        .output("y").writeTo(java.nio.file.Files.createDirectories(tmp.resolve(name)));
    Api.Response r = api.postFile("/v1/models?name=" + name, model);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    return r.json().get("id").asString();
  }

}
