package dev.modelpress.cleanup;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.storage.FileSystemArtifactStore;
import dev.modelpress.testing.MutableClock;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.ByteArrayInputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.UUID;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.jdbc.core.simple.JdbcClient;

/** The sweeper on a real PostgreSQL (the service's migrations) and a real filesystem store. */
class OrphanSweeperTest {

  static EmbeddedPostgres postgres;
  static JdbcClient jdbc;

  @TempDir Path root;

  @BeforeAll
  static void database() throws Exception {
    postgres = EmbeddedPostgres.start();
    Flyway.configure().dataSource(postgres.getPostgresDatabase()).locations("classpath:db/migration").load().migrate();
    jdbc = JdbcClient.create(postgres.getPostgresDatabase());
  }

  @AfterAll
  static void stop() throws Exception {
    postgres.close();
  }

  @Test
  void reportsThenDeletesOrphansOnlyAfterTheGracePeriodAndReportsRowsWithoutObjects() throws Exception {
    FileSystemArtifactStore store = new FileSystemArtifactStore(root);
    UUID model = UUID.randomUUID();
    UUID dataset = UUID.randomUUID();
    UUID job = UUID.randomUUID();
    jdbc.sql("""
        insert into models (id, owner, name, format, storage_key, sha256, bytes, parameter_count, tensor_count,
          summary, tensors, created_at)
        values (?, 'default', 'm', 'onnx', ?, repeat('0', 64), 1, 0, 0, '{}', '[]', now())""")
        .params(model, "models/" + model + "/model.onnx").update();
    jdbc.sql("""
        insert into datasets (id, owner, name, storage_key, sha256, bytes, samples, has_labels, arrays, created_at)
        values (?, 'default', 'd', ?, repeat('0', 64), 1, 1, false, '[]', now())""")
        .params(dataset, "datasets/" + dataset + "/data.npz").update();
    jdbc.sql("""
        insert into jobs (id, owner, state, model_id, spec, attempts, max_attempts, created_at, updated_at)
        values (?, 'default', 'RUNNING', ?, '{}', 2, 3, now(), now())""").params(job, model).update();

    put(store, "models/" + model + "/model.onnx");                 // referenced by its row
    put(store, "jobs/" + job + "/attempt-2/model.onnx");            // the running attempt: not an orphan
    put(store, "jobs/" + job + "/attempt-1/model.onnx");            // a killed attempt: orphan
    put(store, "models/" + UUID.randomUUID() + "/model.onnx");      // an upload that never committed: orphan
    // The dataset row's object was never stored: a row without an object.

    MutableClock clock = new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));
    OrphanSweeper sweeper = new OrphanSweeper(store, jdbc, clock,
        new CleanupProperties(true, CleanupProperties.Mode.DELETE, Duration.ofHours(1), Duration.ofHours(1)));

    OrphanSweeper.Report first = sweeper.sweep();
    assertThat(first.orphanObjects()).as("within the grace period").isEmpty();
    assertThat(first.pendingObjects()).isEqualTo(2);
    assertThat(first.missingObjects()).containsExactly(
        new OrphanSweeper.MissingObject("datasets", dataset.toString(), "datasets/" + dataset + "/data.npz"));
    assertThat(store.list("").count()).isEqualTo(4);

    clock.advance(Duration.ofMinutes(61));
    OrphanSweeper.Report second = sweeper.sweep();
    assertThat(second.orphanObjects()).hasSize(2)
        .contains("jobs/" + job + "/attempt-1/model.onnx")
        .allSatisfy(k -> assertThat(k).doesNotContain(model.toString()).doesNotContain("attempt-2"));
    assertThat(second.deletedObjects()).isEqualTo(second.orphanObjects());
    assertThat(store.list("").sorted().toList()).containsExactly(
        "jobs/" + job + "/attempt-2/model.onnx", "models/" + model + "/model.onnx");
    assertThat(sweeper.lastReport()).isSameAs(second);
    assertThat(sweeper.sweep().orphanObjects()).isEmpty();
  }

  @Test
  void trainingCheckpointsSurviveWhileTheirJobIsUnfinishedAndGoOnceItEnds() throws Exception {
    FileSystemArtifactStore store = new FileSystemArtifactStore(root);
    UUID model = UUID.randomUUID();
    UUID queued = UUID.randomUUID();
    UUID finished = UUID.randomUUID();
    for (var job : java.util.Map.of(queued, "QUEUED", finished, "FAILED").entrySet()) {
      jdbc.sql("""
          insert into jobs (id, owner, state, model_id, spec, attempts, max_attempts, created_at, updated_at)
          values (?, 'default', ?, ?, '{}', 1, 3, now(), now())""").params(job.getKey(), job.getValue(), model).update();
    }
    // A queued job (its worker died after epoch 2, the lease expired): the next attempt resumes from it.
    put(store, "jobs/" + queued + "/checkpoints/step-0.ckpt");
    put(store, "jobs/" + finished + "/checkpoints/step-0.ckpt");
    MutableClock clock = new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));
    OrphanSweeper sweeper = new OrphanSweeper(store, jdbc, clock,
        new CleanupProperties(true, CleanupProperties.Mode.DELETE, Duration.ofHours(1), Duration.ofHours(1)));
    sweeper.sweep();
    clock.advance(Duration.ofHours(2));
    assertThat(sweeper.sweep().deletedObjects()).containsExactly("jobs/" + finished + "/checkpoints/step-0.ckpt");
    assertThat(store.list("").toList()).containsExactly("jobs/" + queued + "/checkpoints/step-0.ckpt");
  }

  @Test
  void reportModeNeverDeletes() throws Exception {
    FileSystemArtifactStore store = new FileSystemArtifactStore(root);
    put(store, "datasets/" + UUID.randomUUID() + "/data.npz");
    OrphanSweeper sweeper = new OrphanSweeper(store, jdbc, new MutableClock(Instant.EPOCH),
        new CleanupProperties(true, CleanupProperties.Mode.REPORT, Duration.ofHours(1), Duration.ZERO));
    OrphanSweeper.Report report = sweeper.sweep();
    assertThat(report.orphanObjects()).hasSize(1);
    assertThat(report.deletedObjects()).isEmpty();
    assertThat(store.list("").count()).isEqualTo(1);
  }

  private static void put(FileSystemArtifactStore store, String key) throws Exception {
    store.put(key, new ByteArrayInputStream(new byte[] {1, 2, 3}));
  }
}
