package dev.modelpress.worker;

import dev.modelpress.job.JobQueue;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.context.SmartLifecycle;
import org.springframework.stereotype.Component;

/**
 * The worker threads of this process. Each loops: end exhausted jobs, claim one, run it; when the
 * queue is empty it sleeps until a NOTIFY from {@link QueueListener} or the poll interval. A
 * scheduler renews the lease of every running job and saves its progress. On shutdown running jobs
 * stop at their next checkpoint and are handed back to the queue.
 */
@Component
@ConditionalOnProperty(prefix = "modelpress.worker", name = "enabled", havingValue = "true", matchIfMissing = true)
public class JobWorkers implements SmartLifecycle {

  private static final Logger log = LoggerFactory.getLogger(JobWorkers.class);

  private final JobQueue queue;
  private final JobRunner runner;
  private final WorkerProperties props;
  private final WorkerMetrics metrics;
  private final String processId;
  private final Semaphore wakeups = new Semaphore(0);
  private final Map<UUID, JobExecution> running = new ConcurrentHashMap<>();
  private final List<Thread> threads = new ArrayList<>();
  private ScheduledExecutorService heartbeats;
  private volatile boolean active;

  JobWorkers(JobQueue queue, JobRunner runner, WorkerProperties props, WorkerMetrics metrics) {
    this.queue = queue;
    this.runner = runner;
    this.props = props;
    this.metrics = metrics;
    metrics.watch(this);
    this.processId = hostName() + ":" + ManagementFactory.getRuntimeMXBean().getPid() + ":"
        + UUID.randomUUID().toString().substring(0, 8);
  }

  @Override
  public synchronized void start() {
    if (active) {
      return;
    }
    active = true;
    heartbeats = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "modelpress-heartbeat");
      t.setDaemon(true);
      return t;
    });
    for (int i = 0; i < props.concurrency(); i++) {
      String workerId = processId + ":w" + i;
      Thread t = Thread.ofPlatform().name("modelpress-worker-" + i).unstarted(() -> loop(workerId));
      threads.add(t);
      t.start();
    }
    log.info("Started {} worker(s) as {}", props.concurrency(), processId);
  }

  @Override
  public synchronized void stop() {
    if (!active) {
      return;
    }
    active = false;
    running.values().forEach(e -> e.requestStop(JobExecution.StopReason.SHUTDOWN));
    wakeups.release(threads.size());
    for (Thread t : threads) {
      try {
        t.join(props.lease().toMillis());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    threads.clear();
    heartbeats.shutdownNow();
    log.info("Workers stopped");
  }

  @Override
  public boolean isRunning() {
    return active;
  }

  /** Stop before the web server and the connection pool. */
  @Override
  public int getPhase() {
    return Integer.MAX_VALUE - 2048;
  }

  /** A job was queued: wake one idle worker. */
  void wake() {
    if (wakeups.availablePermits() < threads.size()) {
      wakeups.release();
    }
  }

  /** A running job's cancellation was requested: stop it at its next checkpoint. */
  void cancel(UUID jobId) {
    JobExecution e = running.get(jobId);
    if (e != null) {
      e.requestStop(JobExecution.StopReason.CANCELLED);
    }
  }

  /** Jobs running in this process now. */
  public int runningJobs() {
    return running.size();
  }

  private void loop(String workerId) {
    long backoff = 100;
    while (active) {
      try {
        queue.expireExhausted();
        Optional<JobQueue.Claim> claim = active ? queue.claim(workerId, props.lease()) : Optional.empty();
        backoff = 100;
        if (claim.isPresent()) {
          execute(claim.get());
          continue;
        }
        wakeups.tryAcquire(props.pollInterval().toMillis(), TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      } catch (RuntimeException e) {
        // Database unreachable or similar: back off and try again; jobs are safe in the table.
        log.warn("Worker {} could not poll the queue: {}", workerId, e.toString());
        sleep(backoff);
        backoff = Math.min(backoff * 2, props.pollInterval().toMillis());
      }
    }
  }

  private void execute(JobQueue.Claim claim) {
    JobExecution exec = new JobExecution(claim);
    running.put(claim.jobId(), exec);
    if (!active) {
      exec.requestStop(JobExecution.StopReason.SHUTDOWN);
    }
    long period = props.heartbeat().toMillis();
    ScheduledFuture<?> beat = heartbeats.scheduleAtFixedRate(() -> heartbeat(exec), period, period,
        TimeUnit.MILLISECONDS);
    long started = System.nanoTime();
    metrics.claimed(claim);
    try {
      runner.run(exec);
    } finally {
      beat.cancel(false);
      running.remove(claim.jobId());
      metrics.finished(exec, System.nanoTime() - started);
    }
  }

  private void heartbeat(JobExecution exec) {
    try {
      JobQueue.Beat beat = queue.heartbeat(exec.claim.jobId(), exec.claim.worker(), props.lease(), exec.takeProgress());
      if (!beat.leaseHeld()) {
        exec.requestStop(JobExecution.StopReason.LEASE_LOST);
      } else if (beat.cancelRequested()) {
        exec.requestStop(JobExecution.StopReason.CANCELLED);
      }
    } catch (RuntimeException e) {
      log.warn("Heartbeat for job {} failed: {}", exec.claim.jobId(), e.toString());
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static String hostName() {
    String env = System.getenv("HOSTNAME");
    if (env != null && !env.isBlank()) {
      return env;
    }
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (java.io.IOException e) {
      return "localhost";
    }
  }
}
