package dev.modelpress.job;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.LongAdder;
import org.flywaydb.core.Flyway;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * How many jobs per second one PostgreSQL hands out through {@link JobQueue}, as the number of
 * concurrent workers grows: each worker thread does what a real worker loop does per job
 * ({@code expireExhausted}, {@code claim}, one {@code heartbeat}, {@code succeed}), with no compute
 * in between, so the figure is the queue's ceiling, not a job rate. Runs on a real PostgreSQL
 * (embedded binaries, default settings but {@code max_connections}) on this machine, whose cores
 * the benchmark's threads share with the server; a second pass repeats it with a table that
 * already holds a history of finished jobs.
 *
 * <p>Run with {@code scripts/queue-throughput} (args: jobs per run, worker counts, history rows).
 */
public final class QueueThroughputBenchmark {

  private static final Duration LEASE = Duration.ofSeconds(60);

  public static void main(String[] args) throws Exception {
    int jobsPerRun = args.length > 0 ? Integer.parseInt(args[0]) : 3000;
    int[] workerCounts = args.length > 1
        ? java.util.Arrays.stream(args[1].split(",")).mapToInt(Integer::parseInt).toArray()
        : new int[] {1, 4, 16, 64};
    int history = args.length > 2 ? Integer.parseInt(args[2]) : 100_000;
    int maxWorkers = java.util.Arrays.stream(workerCounts).max().orElse(1);

    Path dir = Files.createTempDirectory("modelpress-queue-bench");
    try (EmbeddedPostgres pg = EmbeddedPostgres.builder().setDataDirectory(dir.resolve("pg"))
        .setServerConfig("max_connections", String.valueOf(maxWorkers + 20)).start()) {
      HikariConfig config = new HikariConfig();
      config.setJdbcUrl(pg.getJdbcUrl("postgres", "postgres"));
      config.setMaximumPoolSize(maxWorkers + 2);
      try (HikariDataSource ds = new HikariDataSource(config)) {
        Flyway.configure().dataSource(ds).locations("classpath:db/migration").load().migrate();
        JdbcClient jdbc = JdbcClient.create(ds);
        JobQueue queue = new JobQueue(jdbc, Clock.systemUTC(), new TransactionTemplate(new DataSourceTransactionManager(ds)),
            new dev.modelpress.tenant.QuotaProperties(org.springframework.util.unit.DataSize.ofGigabytes(100), Integer.MAX_VALUE, 50, 100));
        System.out.printf("PostgreSQL %s, %d CPUs shared by server and workers, %d jobs per run%n",
            jdbc.sql("show server_version").query(String.class).single(),
            Runtime.getRuntime().availableProcessors(), jobsPerRun);

        run(jdbc, queue, 1, Math.min(500, jobsPerRun), false); // warm-up: JIT, plans, buffers
        System.out.println("history rows | workers | jobs/s | p50 claim ms | p99 claim ms");
        for (int workers : workerCounts) {
          report(0, workers, run(jdbc, queue, workers, jobsPerRun, true));
        }
        insertHistory(jdbc, history);
        jdbc.sql("analyze jobs").update();
        for (int workers : workerCounts) {
          report(history, workers, run(jdbc, queue, workers, jobsPerRun, false));
        }
      }
    }
  }

  private record Result(double jobsPerSecond, double p50ClaimMs, double p99ClaimMs) {}

  private static void report(int history, int workers, Result r) {
    System.out.printf("%12d | %7d | %6.0f | %12.2f | %12.2f%n", history, workers, r.jobsPerSecond, r.p50ClaimMs, r.p99ClaimMs);
  }

  /** Queues {@code jobs} jobs, then lets {@code workers} threads drain the queue. */
  private static Result run(JdbcClient jdbc, JobQueue queue, int workers, int jobs, boolean purge) throws Exception {
    if (purge) {
      jdbc.sql("delete from jobs").update();
    }
    enqueue(jdbc, jobs, "QUEUED");
    ExecutorService pool = Executors.newFixedThreadPool(workers);
    CountDownLatch start = new CountDownLatch(1);
    LongAdder done = new LongAdder();
    List<Future<long[]>> futures = new ArrayList<>();
    for (int w = 0; w < workers; w++) {
      String worker = "bench-" + w;
      futures.add(pool.submit(() -> {
        start.await();
        long[] claimNanos = new long[jobs + 1];
        int n = 0;
        while (true) {
          long t0 = System.nanoTime();
          queue.expireExhausted();
          Optional<JobQueue.Claim> claim = queue.claim(worker, LEASE);
          if (claim.isEmpty()) {
            break;
          }
          claimNanos[n++] = System.nanoTime() - t0;
          queue.heartbeat(claim.get().jobId(), worker, LEASE, "{\"fraction\":0.5}");
          if (!queue.succeed(claim.get(), "{}", "{\"fraction\":1.0}", List.of())) {
            throw new IllegalStateException("lost the lease of " + claim.get().jobId());
          }
          done.increment();
        }
        return java.util.Arrays.copyOf(claimNanos, n);
      }));
    }
    long t0 = System.nanoTime();
    start.countDown();
    List<Long> latencies = new ArrayList<>();
    for (Future<long[]> f : futures) {
      for (long l : f.get()) {
        latencies.add(l);
      }
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    pool.shutdown();
    if (done.sum() != jobs) {
      throw new IllegalStateException("ran " + done.sum() + " of " + jobs + " jobs");
    }
    latencies.sort(null);
    return new Result(jobs / seconds, latencies.get(latencies.size() / 2) / 1e6,
        latencies.get((int) (latencies.size() * 0.99)) / 1e6);
  }

  private static void enqueue(JdbcClient jdbc, int jobs, String state) {
    Instant now = Instant.now();
    jdbc.sql("""
            insert into jobs (id, owner, state, model_id, spec, max_attempts, created_at, updated_at, finished_at)
            select gen_random_uuid(), 'default', :state, gen_random_uuid(), '{"steps":[]}', 3,
                   :now + make_interval(secs => g / 1000.0), :now,
                   case when :state = 'QUEUED' then null else :now end
              from generate_series(1, :n) g""")
        .param("state", state)
        .param("now", now.atOffset(ZoneOffset.UTC))
        .param("n", jobs)
        .update();
  }

  private static void insertHistory(JdbcClient jdbc, int rows) {
    enqueue(jdbc, rows, "SUCCEEDED");
  }

  private QueueThroughputBenchmark() {}

}
