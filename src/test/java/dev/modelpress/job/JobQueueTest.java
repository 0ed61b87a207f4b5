package dev.modelpress.job;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.testing.MutableClock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.context.annotation.Bean;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.ActiveProfiles;

/** The queue on a real PostgreSQL: claims, leases, attempts, fencing, cancellation. No workers run here. */
@SpringBootTest(properties = {"modelpress.worker.enabled=false", "modelpress.jobs.max-attempts=3"})
@ActiveProfiles("test")
class JobQueueTest {

  @TestConfiguration
  static class Clocks {
    @Bean
    @org.springframework.context.annotation.Primary
    MutableClock testClock() {
      return new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));
    }
  }

  private static final Duration LEASE = Duration.ofSeconds(30);

  @Autowired JobQueue queue;
  @Autowired JdbcClient jdbc;
  @Autowired MutableClock clock;

  @BeforeEach
  void emptyQueue() {
    jdbc.sql("delete from artifacts").update();
    jdbc.sql("delete from jobs").update();
  }

  @Test
  void concurrentClaimersNeverShareAJob() throws Exception {
    int jobs = 300;
    for (int i = 0; i < jobs; i++) {
      insertJob(i);
    }
    int claimers = 8;
    ExecutorService pool = Executors.newFixedThreadPool(claimers);
    Set<UUID> claimed = ConcurrentHashMap.newKeySet();
    List<UUID> duplicates = Collections.synchronizedList(new ArrayList<>());
    CountDownLatch start = new CountDownLatch(1);
    List<Future<Integer>> results = new ArrayList<>();
    for (int w = 0; w < claimers; w++) {
      String worker = "worker-" + w;
      results.add(pool.submit(() -> {
        start.await();
        int mine = 0;
        Optional<JobQueue.Claim> claim;
        while ((claim = queue.claim(worker, LEASE)).isPresent()) {
          if (!claimed.add(claim.get().jobId())) {
            duplicates.add(claim.get().jobId());
          }
          assertThat(queue.succeed(claim.get(), "{}", null, List.of())).isTrue();
          mine++;
        }
        return mine;
      }));
    }
    start.countDown();
    int total = 0;
    Set<Integer> perWorker = new HashSet<>();
    for (Future<Integer> f : results) {
      int n = f.get(60, TimeUnit.SECONDS);
      total += n;
      perWorker.add(n);
    }
    pool.shutdown();
    assertThat(duplicates).isEmpty();
    assertThat(total).isEqualTo(jobs);
    assertThat(claimed).hasSize(jobs);
    assertThat(count("SUCCEEDED")).isEqualTo(jobs);
    assertThat(jdbc.sql("select max(attempts) from jobs").query(Integer.class).single()).isEqualTo(1);
  }

  @Test
  void claimsInSubmissionOrder() {
    UUID first = insertJob(0);
    clock.advance(Duration.ofSeconds(1));
    UUID second = insertJob(1);
    assertThat(queue.claim("w", LEASE).orElseThrow().jobId()).isEqualTo(first);
    assertThat(queue.claim("w", LEASE).orElseThrow().jobId()).isEqualTo(second);
    assertThat(queue.claim("w", LEASE)).isEmpty();
  }

  @Test
  void expiredLeaseIsClaimedAgainAndTheOldOwnerIsFencedOut() {
    UUID id = insertJob(0);
    JobQueue.Claim dead = queue.claim("dead-worker", LEASE).orElseThrow();
    assertThat(queue.claim("other", LEASE)).as("a live lease is not claimable").isEmpty();

    clock.advance(LEASE.plusSeconds(1));
    JobQueue.Claim rescuer = queue.claim("rescuer", LEASE).orElseThrow();
    assertThat(rescuer.jobId()).isEqualTo(id);
    assertThat(rescuer.attempt()).isEqualTo(2);

    // The first worker wakes up (GC pause, partition): it can no longer touch the job.
    assertThat(queue.heartbeat(id, "dead-worker", LEASE, null).leaseHeld()).isFalse();
    assertThat(queue.succeed(dead, "{\"bytesAfter\":1}", null, List.of())).isFalse();
    assertThat(queue.fail(dead, "{}")).isFalse();

    assertThat(queue.succeed(rescuer, "{\"bytesAfter\":2}", null,
        List.of(new JobQueue.NewArtifact("model.onnx", "jobs/x/model.onnx", "application/octet-stream", 2, "ab".repeat(32)))))
        .isTrue();
    assertThat(state(id)).isEqualTo("SUCCEEDED");
    assertThat(jdbc.sql("select report_summary->>'bytesAfter' from jobs where id = ?").param(id).query(String.class).single())
        .isEqualTo("2");
    assertThat(jdbc.sql("select count(*) from artifacts where job_id = ?").param(id).query(Integer.class).single()).isEqualTo(1);
  }

  @Test
  void heartbeatKeepsTheLeaseAlive() {
    UUID id = insertJob(0);
    queue.claim("w1", LEASE).orElseThrow();
    for (int i = 0; i < 5; i++) {
      clock.advance(LEASE.minusSeconds(5));
      assertThat(queue.heartbeat(id, "w1", LEASE, "{\"step\":" + i + "}").leaseHeld()).isTrue();
      assertThat(queue.claim("w2", LEASE)).isEmpty();
    }
    assertThat(jdbc.sql("select progress->>'step' from jobs where id = ?").param(id).query(String.class).single())
        .isEqualTo("4");
  }

  @Test
  void attemptsAreBounded() {
    UUID id = insertJob(0);
    for (int attempt = 1; attempt <= 3; attempt++) {
      JobQueue.Claim c = queue.claim("crashing-" + attempt, LEASE).orElseThrow();
      assertThat(c.attempt()).isEqualTo(attempt);
      clock.advance(LEASE.plusSeconds(1));
    }
    assertThat(queue.claim("another", LEASE)).as("no attempts left").isEmpty();
    assertThat(queue.expireExhausted()).isEqualTo(1);
    assertThat(state(id)).isEqualTo("FAILED");
    String error = jdbc.sql("select error::text from jobs where id = ?").param(id).query(String.class).single();
    assertThat(error).contains("https://modelpress.dev/problems/attempts-exhausted").contains("3 time(s)");
    assertThat(jdbc.sql("select finished_at is not null from jobs where id = ?").param(id).query(Boolean.class).single())
        .isTrue();
  }

  @Test
  void gracefulReleaseRequeuesWithoutSpendingAnAttempt() {
    UUID id = insertJob(0);
    JobQueue.Claim c = queue.claim("w1", LEASE).orElseThrow();
    assertThat(queue.release(c)).isTrue();
    assertThat(state(id)).isEqualTo("QUEUED");
    JobQueue.Claim again = queue.claim("w2", LEASE).orElseThrow();
    assertThat(again.attempt()).isEqualTo(1);
  }

  @Test
  void cancellingAQueuedJobEndsItAtOnce() {
    UUID id = insertJob(0);
    assertThat(queue.requestCancel(id, "default")).isEqualTo(JobQueue.CancelOutcome.CANCELLED);
    assertThat(state(id)).isEqualTo("CANCELLED");
    assertThat(queue.claim("w", LEASE)).isEmpty();
    assertThat(queue.requestCancel(id, "default")).isEqualTo(JobQueue.CancelOutcome.ALREADY_CANCELLED);
  }

  @Test
  void cancellingARunningJobFlagsItForTheWorker() {
    UUID id = insertJob(0);
    JobQueue.Claim c = queue.claim("w", LEASE).orElseThrow();
    assertThat(queue.requestCancel(id, "default")).isEqualTo(JobQueue.CancelOutcome.REQUESTED);
    assertThat(state(id)).isEqualTo("RUNNING");
    assertThat(queue.heartbeat(id, "w", LEASE, null).cancelRequested()).isTrue();
    assertThat(queue.cancelled(c)).isTrue();
    assertThat(state(id)).isEqualTo("CANCELLED");
    assertThat(queue.requestCancel(id, "default")).isEqualTo(JobQueue.CancelOutcome.ALREADY_CANCELLED);
  }

  @Test
  void aCancelledJobWhoseWorkerDiedIsNotRetried() {
    UUID id = insertJob(0);
    queue.claim("w", LEASE).orElseThrow();
    queue.requestCancel(id, "default");
    clock.advance(LEASE.plusSeconds(1));
    assertThat(queue.claim("w2", LEASE)).isEmpty();
    assertThat(queue.expireExhausted()).isEqualTo(1);
    assertThat(state(id)).isEqualTo("CANCELLED");
  }

  @Test
  void cancellingAFinishedJobIsRefused() {
    UUID id = insertJob(0);
    JobQueue.Claim c = queue.claim("w", LEASE).orElseThrow();
    queue.succeed(c, "{}", null, List.of());
    assertThat(queue.requestCancel(id, "default")).isEqualTo(JobQueue.CancelOutcome.ALREADY_FINISHED);
    assertThat(queue.requestCancel(UUID.randomUUID(), "default")).isEqualTo(JobQueue.CancelOutcome.NOT_FOUND);
    assertThat(queue.requestCancel(id, "someone-else")).isEqualTo(JobQueue.CancelOutcome.NOT_FOUND);
  }

  private UUID insertJob(int i) {
    UUID id = UUID.randomUUID();
    jdbc.sql("""
            insert into jobs (id, owner, state, model_id, spec, max_attempts, created_at, updated_at)
            values (?, 'default', 'QUEUED', ?, '{"steps":[]}', 3, ?, ?)""")
        .params(id, UUID.randomUUID(), clock.instant().plusMillis(i).atOffset(java.time.ZoneOffset.UTC),
            clock.instant().atOffset(java.time.ZoneOffset.UTC))
        .update();
    return id;
  }

  private String state(UUID id) {
    return jdbc.sql("select state from jobs where id = ?").param(id).query(String.class).single();
  }

  private int count(String state) {
    return jdbc.sql("select count(*) from jobs where state = ?").param(state).query(Integer.class).single();
  }
}
