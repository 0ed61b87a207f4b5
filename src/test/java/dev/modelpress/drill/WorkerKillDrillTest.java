package dev.modelpress.drill;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.cleanup.CleanupProperties;
import dev.modelpress.cleanup.OrphanSweeper;
import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.storage.FileSystemArtifactStore;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.MiniLm;
import dev.modelpress.testing.ServiceProcess;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * The crash drill: worker JVMs sharing one PostgreSQL and one artifact store are killed with
 * SIGKILL in the middle of jobs, five times, each replaced by a fresh process. Every job must still
 * succeed exactly once, with complete artifacts whose checksums match their rows; objects left by
 * the killed attempts are exactly what the orphan sweeper reports.
 */
@Tag("drill")
class WorkerKillDrillTest {

  static final int JOBS = 10;
  static final int KILLS = 5;
  static final String QUANTIZE =
      "{\"type\":\"quantize\",\"weights\":{\"bits\":8,\"symmetric\":true,\"granularity\":\"channel\"}}";

  @TempDir Path dir;

  @Test
  void everyJobSucceedsExactlyOnceWithIntactArtifactsDespiteFiveSigkills() throws Exception {
    try (DrillCluster cluster = new DrillCluster(dir)) {
      ServiceProcess front = cluster.start("api", false, Map.of()).awaitReady(Duration.ofMinutes(4));
      List<ServiceProcess> workers = new ArrayList<>(List.of(
          cluster.start("worker", true, Map.of()), cluster.start("worker", true, Map.of())));
      Api api = new Api(front.port());
      String modelId = api.postFile("/v1/models", MiniLm.modelFile()).json().get("id").asString();
      List<String> jobIds = new ArrayList<>();
      for (int i = 0; i < JOBS; i++) {
        jobIds.add(api.postJson("/v1/jobs", "{\"modelId\":\"" + modelId + "\",\"steps\":[" + QUANTIZE + "]}")
            .json().get("id").asString());
      }

      Random random = new Random(42);
      Set<String> killedWhileRunning = new HashSet<>();
      int kills = 0;
      long deadline = System.nanoTime() + Duration.ofMinutes(6).toNanos();
      while (kills < KILLS && System.nanoTime() < deadline) {
        Map<String, Object> running = runningJobOf(cluster, workers);
        if (running == null) {
          Api.sleep(100);
          continue;
        }
        // Kill at a different point of each job: reading, quantizing, storing or committing.
        Api.sleep(random.nextInt(2_500));
        ServiceProcess victim = (ServiceProcess) running.get("process");
        victim.kill();
        kills++;
        workers.remove(victim);
        String jobId = running.get("id").toString();
        String stateAfter = cluster.query("select state from jobs where id = '" + jobId + "'").getFirst()
            .get("state").toString();
        if (stateAfter.equals("RUNNING")) {
          killedWhileRunning.add(jobId);
        }
        workers.add(cluster.start("worker", true, Map.of()));
      }
      assertThat(kills).as("SIGKILLs delivered mid-job").isEqualTo(KILLS);

      for (String id : jobIds) {
        var job = api.awaitJob(id, Duration.ofMinutes(8));
        assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
      }

      List<Map<String, Object>> jobs = cluster.query("select id::text as id, state, attempts from jobs");
      assertThat(jobs).hasSize(JOBS);
      Map<String, Integer> attempts = new HashMap<>();
      jobs.forEach(j -> attempts.put(j.get("id").toString(), (Integer) j.get("attempts")));
      assertThat(attempts.values()).allSatisfy(a -> assertThat(a).isGreaterThanOrEqualTo(1));
      assertThat(killedWhileRunning).as("jobs killed mid-run").isNotEmpty();
      for (String id : killedWhileRunning) {
        assertThat(attempts.get(id)).as("attempts of job %s, killed while running", id).isGreaterThanOrEqualTo(2);
      }

      // Exactly one set of artifacts per job, from its final (successful) attempt, intact.
      ArtifactStore store = new FileSystemArtifactStore(cluster.storeRoot());
      List<Map<String, Object>> artifacts =
          cluster.query("select job_id::text as job, name, storage_key, bytes, sha256 from artifacts");
      assertThat(artifacts).hasSize(2 * JOBS);
      for (Map<String, Object> a : artifacts) {
        String job = a.get("job").toString();
        String key = a.get("storage_key").toString();
        assertThat(key).isEqualTo("jobs/" + job + "/attempt-" + attempts.get(job) + "/" + a.get("name"));
        Path file = cluster.storeRoot().resolve(key);
        assertThat(Files.size(file)).as(key).isEqualTo((Long) a.get("bytes"));
        assertThat(sha256(store, key)).as(key).isEqualTo(a.get("sha256").toString());
      }
      long modelBytes = artifacts.stream().filter(a -> a.get("name").equals("model.onnx"))
          .mapToLong(a -> (Long) a.get("bytes")).min().orElseThrow();
      assertThat(modelBytes).as("int8 MiniLM is about a quarter of 90 MB").isBetween(20_000_000L, 30_000_000L);

      // Objects stored by killed attempts have no row: the sweeper finds exactly those.
      Set<String> referenced = new HashSet<>();
      artifacts.forEach(a -> referenced.add(a.get("storage_key").toString()));
      cluster.query("select storage_key from models").forEach(m -> referenced.add(m.get("storage_key").toString()));
      Set<String> unreferenced = new HashSet<>();
      try (Stream<String> keys = store.list("")) {
        keys.filter(k -> !referenced.contains(k)).forEach(unreferenced::add);
      }
      OrphanSweeper sweeper = new OrphanSweeper(store, JdbcClient.create(cluster.dataSource()), Clock.systemUTC(),
          new CleanupProperties(false, CleanupProperties.Mode.REPORT, Duration.ofHours(1), Duration.ZERO));
      OrphanSweeper.Report report = sweeper.sweep();
      assertThat(report.missingObjects()).as("rows pointing to missing objects").isEmpty();
      assertThat(report.orphanObjects()).containsExactlyInAnyOrderElementsOf(unreferenced);
      assertThat(report.orphanObjects()).allSatisfy(k -> assertThat(k).matches("jobs/[0-9a-f-]{36}/attempt-\\d+/.*"));
    }
  }

  /** A job RUNNING under one of our live worker processes, with that process, or null. */
  private static Map<String, Object> runningJobOf(DrillCluster cluster, List<ServiceProcess> workers) {
    for (Map<String, Object> row : cluster.query(
        "select id::text as id, lease_owner from jobs where state = 'RUNNING' and lease_owner is not null")) {
      String[] owner = row.get("lease_owner").toString().split(":");
      for (ServiceProcess w : workers) {
        if (w.isAlive() && owner.length > 1 && owner[1].equals(Long.toString(w.pid()))) {
          Map<String, Object> hit = new HashMap<>(row);
          hit.put("process", w);
          return hit;
        }
      }
    }
    return null;
  }

  static String sha256(ArtifactStore store, String key) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    try (InputStream in = store.open(key)) {
      byte[] buf = new byte[1 << 16];
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }
}
