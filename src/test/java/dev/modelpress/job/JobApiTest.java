package dev.modelpress.job;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.testing.Api;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.file.Path;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;

/**
 * Job submission is validated against the model before anything is queued; every rejection names
 * the field. Workers are off here, so accepted jobs stay QUEUED.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = "modelpress.worker.enabled=false")
@ActiveProfiles("test")
class JobApiTest {

  private static final String PROBLEMS = "https://modelpress.dev/problems/";

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;
  @TempDir Path tmp;
  Api api;
  String modelId;

  @BeforeEach
  void uploadModel() {
    api = new Api(port);
    Path model = OnnxGraphBuilder.opset(13).input("x", 1, 8)
        .initializer("fc1.weight", OnnxGraphBuilder.randomFloats(1, 64, 1f), 8, 8).matMul("x", "fc1.weight", "h")
        .relu("h", "r")
        .initializer("fc2.weight", OnnxGraphBuilder.randomFloats(2, 32, 1f), 8, 4).matMul("r", "fc2.weight", "y")
        .output("y").writeTo(tmp);
    modelId = api.postFile("/v1/models", model).json().get("id").asString();
  }

  @Test
  void queuesAValidJobAndEchoesItsEffectiveSteps() {
    Api.Response r = submit("""
        {"type":"prune","sparsity":0.5},{"type":"quantize"}""");
    assertThat(r.status()).as(r.body()).isEqualTo(202);
    JsonNode job = r.json();
    assertThat(r.header("Location")).isEqualTo("/v1/jobs/" + job.get("id").asString());
    assertThat(job.get("state").asString()).isEqualTo("QUEUED");
    assertThat(job.get("attempts").asInt()).isZero();
    JsonNode steps = job.get("steps");
    assertThat(steps.get(0).get("method").asString()).isEqualTo("magnitude");
    assertThat(steps.get(0).get("scope").asString()).isEqualTo("layer");
    assertThat(steps.get(1).get("weights").get("bits").asInt()).isEqualTo(8);
    assertThat(steps.get(1).get("weights").get("symmetric").asBoolean()).isTrue();
    assertThat(steps.get(1).get("weights").get("granularity").asString()).isEqualTo("channel");
    assertThat(api.get("/v1/jobs?state=QUEUED").json().get("items").findValuesAsString("id"))
        .contains(job.get("id").asString());
  }

  @Test
  void unknownStepTypeIs422NamingTheField() {
    assertField(submit("{\"type\":\"shrink\"}"), 422, "steps[0].type");
  }

  @Test
  void impossibleSparsityIs422() {
    assertField(submit("{\"type\":\"prune\",\"sparsity\":1.5}"), 422, "steps[0].sparsity");
  }

  @Test
  void sparsityAndThresholdTogetherIs422() {
    assertField(submit("{\"type\":\"prune\",\"sparsity\":0.5,\"threshold\":0.1}"), 422, "steps[0]");
  }

  @Test
  void includePatternMatchingNoTensorIs422() {
    Api.Response r = submit("{\"type\":\"quantize\",\"include\":[\"decoder\\\\..*\"]}");
    assertField(r, 422, "steps[0].include[0]");
  }

  @Test
  void invalidRegexIs422() {
    assertField(submit("{\"type\":\"quantize\",\"exclude\":[\"fc1[\"]}"), 422, "steps[0].exclude[0]");
  }

  @Test
  void unknownFieldIs422NamingIt() {
    assertField(submit("{\"type\":\"prune\",\"sparsity\":0.5,\"sparsty\":0.5}"), 422, "steps[0].sparsty");
  }

  @Test
  void wrongTypeIs422() {
    assertField(submit("{\"type\":\"prune\",\"sparsity\":\"half\"}"), 422, "steps[0].sparsity");
  }

  @Test
  void malformedJsonIs400() {
    Api.Response r = api.postJson("/v1/jobs", "{\"modelId\": ");
    assertThat(r.status()).isEqualTo(400);
    assertThat(r.problemType()).isEqualTo(PROBLEMS + "malformed-request");
    assertNothingQueued();
  }

  @Test
  void unknownModelIs422OnModelId() {
    Api.Response r = api.postJson("/v1/jobs", "{\"modelId\":\"" + UUID.randomUUID() + "\",\"steps\":[{\"type\":\"quantize\"}]}");
    assertField(r, 422, "modelId");
  }

  @Test
  void trainingStepWithoutTrainingDatasetIs422OnTrainingDatasetId() {
    Api.Response r = submit("{\"type\":\"distill\"}");
    assertField(r, 422, "trainingDatasetId");
    assertNothingQueued();
  }

  @Test
  void impossibleTrainingOptionsAre422NamingEachField() {
    Api.Response r = submit("{\"type\":\"finetune\",\"training\":{\"epochs\":2,\"validationSplit\":0.9,"
        + "\"schedule\":\"linear\",\"temperature\":-1}}");
    assertThat(r.status()).as(r.body()).isEqualTo(422);
    java.util.List<String> fields = new java.util.ArrayList<>();
    r.json().get("errors").forEach(e -> fields.add(e.get("field").asString()));
    assertThat(fields).contains("steps[0].training.validationSplit",
        "steps[0].training.schedule", "steps[0].training.temperature");
    assertField(submit("{\"type\":\"finetune\",\"training\":{\"epochs\":0}}"), 422, "steps[0].training.epochs");
    assertNothingQueued();
  }

  @Test
  void trainingFieldsOnAStepThatDoesNotTrainAre422() {
    Api.Response r = submit("{\"type\":\"quantize\",\"training\":{\"epochs\":2}}");
    assertField(r, 422, "steps[0].training");
    assertNothingQueued();
  }

  @Test
  void int4GroupQuantizationIsQueuedWithItsDefaultsEchoed() {
    Api.Response r = submit("{\"type\":\"quantize\",\"weights\":{\"bits\":4,\"granularity\":\"GROUP\",\"range\":\"mse\"}}");
    assertThat(r.status()).as(r.body()).isEqualTo(202);
    var w = r.json().get("steps").get(0).get("weights");
    assertThat(w.get("bits").asInt()).isEqualTo(4);
    assertThat(w.get("granularity").asString()).isEqualTo("group");
    assertThat(w.get("groupSize").asInt()).isEqualTo(32);
    assertThat(w.get("range").asString()).isEqualTo("mse");
    assertThat(w.get("format").asString()).isEqualTo("auto");
    assertThat(w.get("signed").asBoolean()).isTrue();
  }

  @Test
  void impossibleWeightSchemesAre422OnTheFieldAtFault() {
    assertField(submit("{\"type\":\"quantize\",\"weights\":{\"bits\":4,\"granularity\":\"group\",\"groupSize\":48}}"),
        422, "steps[0].weights.groupSize");
    assertField(submit("{\"type\":\"quantize\",\"weights\":{\"bits\":3}}"), 422, "steps[0].weights.bits");
    assertField(submit("{\"type\":\"quantize\",\"weights\":{\"dtype\":\"fp16\",\"bits\":4}}"), 422,
        "steps[0].weights.bits");
    assertField(submit("{\"type\":\"quantize\",\"weights\":{\"bits\":1,\"symmetric\":false}}"), 422,
        "steps[0].weights.symmetric");
    assertField(submit("{\"type\":\"quantize\",\"weights\":{\"scheme\":\"ternary\",\"bits\":4}}"), 422,
        "steps[0].weights.bits");
    assertField(submit("{\"type\":\"quantize\",\"weights\":{\"bits\":8,\"format\":\"matmulnbits\"}}"), 422,
        "steps[0].weights.format");
    assertField(submit("{\"type\":\"quantize\",\"weights\":{\"groupSize\":64}}"), 422, "steps[0].weights.groupSize");
    assertField(submit("{\"type\":\"quantize\",\"weights\":{\"range\":\"percentile\"}}"), 422,
        "steps[0].weights.range");
  }

  @Test
  void emptyStepsAre422() {
    Api.Response r = api.postJson("/v1/jobs", "{\"modelId\":\"" + modelId + "\",\"steps\":[]}");
    assertThat(r.status()).as(r.body()).isIn(400, 422);
    assertNothingQueued();
  }

  @Test
  void idempotencyKeyReplaysTheSameJob() {
    String body = "{\"modelId\":\"" + modelId + "\",\"steps\":[{\"type\":\"quantize\"}]}";
    Api.Response first = api.postJson("/v1/jobs", body, "key-1");
    Api.Response again = api.postJson("/v1/jobs", body, "key-1");
    assertThat(first.status()).isEqualTo(202);
    assertThat(again.status()).isEqualTo(200);
    assertThat(again.json().get("id").asString()).isEqualTo(first.json().get("id").asString());
    assertThat(jdbc.sql("select count(*) from jobs where idempotency_key = 'key-1'").query(Integer.class).single())
        .isEqualTo(1);

    Api.Response different = api.postJson("/v1/jobs",
        "{\"modelId\":\"" + modelId + "\",\"steps\":[{\"type\":\"prune\",\"sparsity\":0.3}]}", "key-1");
    assertThat(different.status()).isEqualTo(409);
    assertThat(different.problemType()).isEqualTo(PROBLEMS + "idempotency-key-reused");
  }

  @Test
  void cancelQueuedJobThenRefuseAgainOnlyWhenFinished() {
    String id = submit("{\"type\":\"quantize\"}").json().get("id").asString();
    Api.Response r = api.postJson("/v1/jobs/" + id + "/cancel", "");
    assertThat(r.status()).isEqualTo(202);
    assertThat(r.json().get("state").asString()).isEqualTo("CANCELLED");
    assertThat(r.json().get("finishedAt")).isNotNull();
    assertThat(api.postJson("/v1/jobs/" + id + "/cancel", "").status()).as("idempotent").isEqualTo(202);
    assertThat(api.postJson("/v1/jobs/" + UUID.randomUUID() + "/cancel", "").status()).isEqualTo(404);
  }

  @Test
  void modelInUseByAQueuedJobCannotBeDeleted() {
    submit("{\"type\":\"quantize\"}");
    Api.Response r = api.delete("/v1/models/" + modelId);
    assertThat(r.status()).isEqualTo(409);
    assertThat(r.problemType()).isEqualTo(PROBLEMS + "in-use");
  }

  private Api.Response submit(String steps) {
    return api.postJson("/v1/jobs", "{\"modelId\":\"" + modelId + "\",\"steps\":[" + steps + "]}");
  }

  private void assertField(Api.Response r, int status, String field) {
    assertThat(r.status()).as(r.body()).isEqualTo(status);
    assertThat(r.header("Content-Type")).startsWith("application/problem+json");
    assertThat(r.problemType()).isEqualTo(PROBLEMS + "validation-failed");
    assertThat(r.json().get("errors").findValuesAsString("field")).contains(field);
    assertThat(r.json().get("detail").asString()).contains(field);
    assertNothingQueued();
  }

  private void assertNothingQueued() {
    assertThat(jdbc.sql("select count(*) from jobs where model_id = ?").param(UUID.fromString(modelId))
        .query(Integer.class).single()).isZero();
  }
}
