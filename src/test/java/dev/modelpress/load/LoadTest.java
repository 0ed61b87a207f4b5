package dev.modelpress.load;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.ModelpressApplication;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.file.Path;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import tools.jackson.databind.JsonNode;

/**
 * The load script (docs/hardening.md): many concurrent clients submit thousands of cheap jobs
 * (a tiny model, one prune step) and poll them to the end. Reports submit and status throughput and
 * latency percentiles and the queue's claim latency (startedAt - createdAt), and checks that no job
 * is lost or duplicated and that a submission retried with the same {@code Idempotency-Key} returns
 * the same job.
 *
 * <p>Skipped unless {@code -Dload.jobs} is set, so it never slows the normal build:
 * <pre>./mvnw -o -q test -Dtest=LoadTest -Dload.jobs=2000 -Dload.clients=32</pre>
 * {@code -Dload.base=http://host:port} targets a running service instead of starting one in this
 * JVM (embedded PostgreSQL, filesystem store, {@code -Dload.workers} worker threads, default 2).
 */
@Tag("load")
class LoadTest {

  @TempDir Path dir;

  @Test
  void thousandsOfConcurrentSubmissionsAreNeitherLostNorDuplicated() throws Exception {
    String jobsProperty = System.getProperty("load.jobs");
    Assumptions.assumeTrue(jobsProperty != null, "set -Dload.jobs to run the load test");
    int jobs = Integer.parseInt(jobsProperty);
    int clients = Integer.getInteger("load.clients", 32);
    String base = System.getProperty("load.base");
    ConfigurableApplicationContext context = base != null ? null : startService();
    try {
      Api api = base != null ? new Api(URI_PORT(base)) : new Api(Integer.parseInt(
          context.getEnvironment().getProperty("local.server.port")));
      run(api, jobs, clients);
    } finally {
      if (context != null) {
        context.close();
      }
    }
  }

  private static int URI_PORT(String base) {
    return java.net.URI.create(base).getPort();
  }

  private ConfigurableApplicationContext startService() {
    return new SpringApplicationBuilder(ModelpressApplication.class).properties(
        "server.port=0",
        "server.tomcat.threads.max=64",
        "modelpress.embedded-postgres.data-dir=" + dir.resolve("postgres"),
        "modelpress.embedded-postgres.pool-size=24",
        "modelpress.storage.filesystem.root=" + dir.resolve("artifacts"),
        "modelpress.uploads.spool-dir=" + dir.resolve("spool"),
        "modelpress.worker.work-dir=" + dir.resolve("work"),
        "modelpress.worker.concurrency=" + Integer.getInteger("load.workers", 2),
        "modelpress.worker.heartbeat=1s",
        "modelpress.worker.poll-interval=1s",
        "logging.level.dev.modelpress=WARN").run();
  }

  private void run(Api api, int jobs, int clients) throws Exception {
    Path model = OnnxGraphBuilder.opset(13)
        .input("x", 1, 16)
        .initializer("W", OnnxGraphBuilder.randomFloats(1, 256, 1f), 16, 16)
        .matMul("x", "W", "y")
        .output("y")
        .writeTo(dir);
    String modelId = api.postFile("/v1/models", model).json().get("id").asString();
    String body = "{\"modelId\":\"" + modelId + "\",\"steps\":[{\"type\":\"prune\",\"sparsity\":0.5}]}";

    long[] submitNanos = new long[jobs];
    String[] ids = new String[jobs];
    AtomicInteger next = new AtomicInteger();
    AtomicInteger retriesSameJob = new AtomicInteger();
    AtomicInteger retries = new AtomicInteger();
    List<Long> statusNanos = java.util.Collections.synchronizedList(new ArrayList<>());
    ConcurrentHashMap<String, JsonNode> finished = new ConcurrentHashMap<>();
    long started = System.nanoTime();
    try (ExecutorService pool = Executors.newFixedThreadPool(clients)) {
      List<Future<?>> work = new ArrayList<>();
      for (int c = 0; c < clients; c++) {
        work.add(pool.submit(() -> {
          for (int i; (i = next.getAndIncrement()) < jobs; ) {
            String key = "load-" + i;
            long t0 = System.nanoTime();
            Api.Response r = api.postJson("/v1/jobs", body, key);
            submitNanos[i] = System.nanoTime() - t0;
            assertThat(r.status()).as(r.body()).isEqualTo(202);
            ids[i] = r.json().get("id").asString();
            if (i % 10 == 0) {
              // A client that lost the response retries with the same key.
              retries.incrementAndGet();
              Api.Response again = api.postJson("/v1/jobs", body, key);
              if (again.json().get("id").asString().equals(ids[i])) {
                retriesSameJob.incrementAndGet();
              }
            }
          }
          return null;
        }));
      }
      for (Future<?> f : work) {
        f.get();
      }
    }
    double submitSeconds = (System.nanoTime() - started) / 1e9;

    long pollStarted = System.nanoTime();
    AtomicInteger cursor = new AtomicInteger();
    try (ExecutorService pool = Executors.newFixedThreadPool(clients)) {
      List<Future<?>> work = new ArrayList<>();
      for (int c = 0; c < clients; c++) {
        work.add(pool.submit(() -> {
          long deadline = System.nanoTime() + Duration.ofMinutes(30).toNanos();
          for (int i; (i = cursor.getAndIncrement()) < jobs; ) {
            while (true) {
              long t0 = System.nanoTime();
              Api.Response r = api.get("/v1/jobs/" + ids[i]);
              statusNanos.add(System.nanoTime() - t0);
              assertThat(r.status()).as("job %s lost", ids[i]).isEqualTo(200);
              String state = r.json().get("state").asString();
              if (Set.of("SUCCEEDED", "FAILED", "CANCELLED").contains(state)) {
                finished.put(ids[i], r.json());
                break;
              }
              assertThat(System.nanoTime()).as("job %s still %s", ids[i], state).isLessThan(deadline);
              Api.sleep(200);
            }
          }
          return null;
        }));
      }
      for (Future<?> f : work) {
        f.get();
      }
    }
    double totalSeconds = (System.nanoTime() - started) / 1e9;
    double pollSeconds = (System.nanoTime() - pollStarted) / 1e9;

    long[] claim = finished.values().stream().mapToLong(j -> Duration.between(
        OffsetDateTime.parse(j.get("createdAt").asString()),
        OffsetDateTime.parse(j.get("startedAt").asString())).toMillis()).sorted().toArray();
    long succeeded = finished.values().stream().filter(j -> j.get("state").asString().equals("SUCCEEDED")).count();
    long distinct = Arrays.stream(ids).distinct().count();
    long listed = api.get("/v1/jobs?modelId=" + modelId + "&size=1").json().get("total").asLong();

    long[] submit = Arrays.stream(submitNanos).sorted().toArray();
    long[] status = statusNanos.stream().mapToLong(Long::longValue).sorted().toArray();
    System.out.printf("""
        LOAD jobs=%d clients=%d cores=%d
        LOAD submit: %.1f jobs/s over %.1f s; latency p50 %.1f ms, p99 %.1f ms
        LOAD status: %d calls, %.1f calls/s; latency p50 %.1f ms, p99 %.1f ms
        LOAD claim latency (startedAt - createdAt): p50 %d ms, p99 %d ms, max %d ms
        LOAD end to end: %.1f jobs/s (%d succeeded of %d, %.1f s total)
        LOAD distinct ids %d, jobs listed for the model %d, idempotent retries %d/%d same job
        """,
        jobs, clients, Runtime.getRuntime().availableProcessors(),
        jobs / submitSeconds, submitSeconds, ms(pct(submit, 50)), ms(pct(submit, 99)),
        status.length, status.length / pollSeconds, ms(pct(status, 50)), ms(pct(status, 99)),
        pct(claim, 50), pct(claim, 99), claim[claim.length - 1],
        jobs / totalSeconds, succeeded, jobs, totalSeconds,
        distinct, listed, retriesSameJob.get(), retries.get());

    assertThat(distinct).as("one job per submission").isEqualTo(jobs);
    assertThat(listed).as("no duplicate jobs from retried submissions").isEqualTo(jobs);
    assertThat(retriesSameJob.get()).isEqualTo(retries.get());
    assertThat(finished).hasSize(jobs);
    assertThat(succeeded).isEqualTo(jobs);
  }

  private static long pct(long[] sorted, int p) {
    return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p / 100.0 * sorted.length) - 1)];
  }

  private static double ms(long nanos) {
    return nanos / 1e6;
  }
}
