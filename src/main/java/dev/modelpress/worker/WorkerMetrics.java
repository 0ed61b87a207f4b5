package dev.modelpress.worker;

import dev.modelpress.job.JobQueue;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Clock;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Component;

/**
 * The workers' meters: {@code modelpress.jobs.claim.latency} (submission to first claim), {@code
 * modelpress.jobs.duration{outcome}} (claim to end, by the state the attempt left the job in),
 * {@code modelpress.jobs.step.duration{type}} (each completed prune/quantize/evaluate step), and
 * {@code modelpress.workers.running|concurrency|utilization} of this process.
 */
@Component
@ConditionalOnProperty(prefix = "modelpress.worker", name = "enabled", havingValue = "true", matchIfMissing = true)
class WorkerMetrics {

  private static final Logger log = LoggerFactory.getLogger(WorkerMetrics.class);

  private final MeterRegistry meters;
  private final JdbcClient jdbc;
  private final Clock clock;
  private final WorkerProperties props;
  private final Timer claimLatency;

  WorkerMetrics(MeterRegistry meters, JdbcClient jdbc, Clock clock, WorkerProperties props) {
    this.meters = meters;
    this.jdbc = jdbc;
    this.clock = clock;
    this.props = props;
    this.claimLatency = Timer.builder("modelpress.jobs.claim.latency")
        .description("Time from a job's submission to its first claim by a worker")
        .register(meters);
  }

  void watch(JobWorkers workers) {
    Gauge.builder("modelpress.workers.running", workers, JobWorkers::runningJobs)
        .description("Jobs running in this process").register(meters);
    Gauge.builder("modelpress.workers.concurrency", props, WorkerProperties::concurrency)
        .description("Jobs this process runs at most at once").register(meters);
    Gauge.builder("modelpress.workers.utilization", workers,
            w -> props.concurrency() == 0 ? 0 : (double) w.runningJobs() / props.concurrency())
        .description("Running jobs / concurrency in this process (0..1)").register(meters);
  }

  /** A first attempt measures how long the job waited in the queue; retries would measure their own run too. */
  void claimed(JobQueue.Claim claim) {
    if (claim.attempt() != 1) {
      return;
    }
    try {
      jdbc.sql("select created_at from jobs where id = ?").param(claim.jobId()).query(OffsetDateTime.class)
          .optional()
          .ifPresent(created -> claimLatency.record(Duration.between(created.toInstant(), clock.instant())));
    } catch (RuntimeException e) {
      log.debug("No claim latency for {}: {}", claim.jobId(), e.toString());
    }
  }

  void finished(JobExecution exec, long nanos) {
    for (JobExecution.StepTime step : exec.stepTimes()) {
      Timer.builder("modelpress.jobs.step.duration")
          .description("Duration of completed job steps by type")
          .tag("type", step.type())
          .register(meters)
          .record(step.nanos(), TimeUnit.NANOSECONDS);
    }
    String outcome;
    try {
      outcome = jdbc.sql("select state from jobs where id = ?").param(exec.claim.jobId()).query(String.class)
          .optional().orElse("deleted");
      // Still RUNNING: the lease went to another worker; QUEUED: handed back on shutdown.
      outcome = switch (outcome) {
        case "RUNNING" -> "lease_lost";
        case "QUEUED" -> "released";
        default -> outcome.toLowerCase(java.util.Locale.ROOT);
      };
    } catch (RuntimeException e) {
      outcome = "unknown";
    }
    Timer.builder("modelpress.jobs.duration")
        .description("Duration of job attempts, claim to end, by outcome")
        .tag("outcome", outcome)
        .register(meters)
        .record(nanos, TimeUnit.NANOSECONDS);
  }
}
