package dev.modelpress.drill;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.NpzWriter;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.Classifier;
import dev.modelpress.testing.FashionMnist;
import dev.modelpress.testing.ServiceProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A distillation job whose worker JVM is killed with SIGKILL in the middle of training resumes, in
 * a fresh worker, from the checkpoint of its last finished epoch: the second attempt trains only
 * the epochs that were left, and the job finishes with one history entry per epoch.
 */
@Tag("drill")
class TrainingResumeDrillTest {

  static final int EPOCHS = 3;

  @TempDir Path dir;

  @Test
  void distillationKilledAfterAnEpochResumesFromItsCheckpointWithoutRepeatingFinishedEpochs() throws Exception {
    Path train = dir.resolve("train.npz");
    NpzWriter.write(train, FashionMnist.trainSet(4_000), false);
    try (DrillCluster cluster = new DrillCluster(dir)) {
      ServiceProcess front = cluster.start("api", false, Map.of()).awaitReady(Duration.ofMinutes(4));
      ServiceProcess worker = cluster.start("worker", true, Map.of());
      Api api = new Api(front.port());
      String model = api.postFile("/v1/models", Classifier.fashionCnn()).json().get("id").asString();
      String data = api.postFile("/v1/datasets", train).json().get("id").asString();
      Api.Response submitted = api.postJson("/v1/jobs", """
          {"modelId":"%s","trainingDatasetId":"%s",
           "steps":[{"type":"distill","student":{"width":0.5},"training":{"epochs":%d,"seed":11}}]}"""
          .formatted(model, data, EPOCHS));
      assertThat(submitted.status()).as(submitted.body()).isEqualTo(202);
      String id = submitted.json().get("id").asString();

      // Kill the worker once the checkpoint after epoch 1 is stored and epoch 2 is under way.
      Path checkpoint = cluster.storeRoot().resolve("jobs/" + id + "/checkpoints/step-0.ckpt");
      long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
      String progress = "";
      while (System.nanoTime() < deadline) {
        JsonNode job = api.get("/v1/jobs/" + id).json();
        progress = job.path("progress").path("message").asString("");
        if (Files.exists(checkpoint) && progress.startsWith("epoch 2/")) {
          break;
        }
        assertThat(job.get("state").asString()).as(job.toString()).isIn("QUEUED", "RUNNING");
        Api.sleep(100);
      }
      assertThat(progress).as("training reached epoch 2 with a stored checkpoint").startsWith("epoch 2/");
      worker.kill();
      ServiceProcess second = cluster.start("worker", true, Map.of());

      JsonNode job = api.awaitJob(id, Duration.ofMinutes(6));
      assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
      assertThat(job.get("attempts").asInt()).isEqualTo(2);
      Path reportFile = dir.resolve("report.json");
      assertThat(api.download("/v1/jobs/" + id + "/artifacts/report.json", reportFile).status()).isEqualTo(200);
      JsonNode details = JsonMapper.builder().build().readTree(reportFile.toFile()).get("stepReports").get(0)
          .get("details");
      int resumedAfter = details.get("resumedAfterEpoch").asInt();
      assertThat(resumedAfter).as("the second attempt started after the killed one's last finished epoch")
          .isBetween(1, EPOCHS - 1);
      List<Integer> epochs = new ArrayList<>();
      details.get("history").forEach(h -> epochs.add(h.get("epoch").asInt()));
      assertThat(epochs).containsExactly(1, 2, 3);
      // The second worker says so, and trained none of the finished epochs again.
      String log = Files.readString(second.log());
      assertThat(log).contains("resuming after epoch " + resumedAfter);
      assertThat(cluster.query("select count(*) as n from jobs where id = '" + id + "' and state = 'SUCCEEDED'")
          .getFirst().get("n")).isEqualTo(1L);
      assertThat(Files.exists(checkpoint)).as("checkpoints are deleted when the job ends").isFalse();
    }
  }
}
