package dev.modelpress.job;

import dev.modelpress.tenant.QuotaProperties;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Component;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * The {@code jobs} table as a queue. A claim takes a claimable row with
 * {@code FOR UPDATE SKIP LOCKED}, interleaving tenants fairly (see {@link #claim}), so any number
 * of workers in any number of processes never take the same job; the claimer holds a lease it must renew. Every later transition is fenced on the
 * lease owner, so a worker that lost its lease (paused, partitioned) cannot overwrite the result of
 * the worker that took over.
 */
@Component
public class JobQueue {

  /** NOTIFY channel for newly queued jobs; payload is the job id. */
  public static final String QUEUED_CHANNEL = "modelpress_jobs";
  /** NOTIFY channel for cancellation requests of running jobs; payload is the job id. */
  public static final String CANCEL_CHANNEL = "modelpress_cancel";
  /**
   * NOTIFY channel of every change a client can see (state, progress, cancel request); payload
   * {@code <job id>:<event_seq>}. Sent by a trigger on {@code jobs} (V2), as is the webhook outbox
   * row written when a job with a {@code callback_url} ends, so every statement here is covered.
   */
  public static final String EVENTS_CHANNEL = "modelpress_job_events";
  /** NOTIFY channel of webhooks queued in the outbox (payload: job id); sent by the same trigger. */
  public static final String WEBHOOKS_CHANNEL = "modelpress_webhooks";

  /** A job claimed by a worker: its id and which attempt this is (1-based). */
  public record Claim(UUID jobId, int attempt, String worker) {}

  /** The answer to a heartbeat. */
  public record Beat(boolean leaseHeld, boolean cancelRequested) {}

  /** An artifact to record when a job succeeds. */
  public record NewArtifact(String name, String storageKey, String contentType, long bytes, String sha256) {}

  private final JdbcClient jdbc;
  private final Clock clock;
  private final TransactionTemplate tx;
  private final QuotaProperties quotas;

  JobQueue(JdbcClient jdbc, Clock clock, TransactionTemplate tx, QuotaProperties quotas) {
    this.jdbc = jdbc;
    this.clock = clock;
    this.tx = tx;
    this.quotas = quotas;
  }

  // --- Fair claim (tenancy): begin -------------------------------------------------------------

  /**
   * Claims a job fairly across tenants: among tenants below their running-job limit, the one with
   * the fewest live running jobs, ties broken by the longest wait since its last claim (round
   * robin); within that tenant, the highest priority, then the oldest job. Claimable are queued
   * jobs and running ones whose lease expired with attempts left. The attempt counter is
   * incremented by the claim, so a job whose workers keep dying is given up by
   * {@link #expireExhausted()} after {@code max_attempts}.
   *
   * <p>One short transaction: pick and lock a job ({@code SKIP LOCKED}), stamp the tenant's
   * {@code tenant_claims} row (which serialises concurrent claims of one tenant), recount the
   * tenant's running jobs with a fresh snapshot, and take the job only if the tenant is still under
   * its limit; otherwise roll back and try the other tenants.
   */
  public Optional<Claim> claim(String worker, Duration lease) {
    List<String> atLimit = new ArrayList<>();
    // Each round excludes one more tenant found at its limit; a handful covers any real race.
    for (int round = 0; round < 16; round++) {
      ClaimRound result = tx.execute(status -> {
        ClaimRound r = claimOnce(worker, lease, atLimit);
        if (r.skippedOwner() != null) {
          status.setRollbackOnly();
        }
        return r;
      });
      if (result == null || result.skippedOwner() == null) {
        return result == null ? Optional.empty() : Optional.ofNullable(result.claim());
      }
      atLimit.add(result.skippedOwner());
    }
    return Optional.empty();
  }

  private record ClaimRound(Claim claim, String skippedOwner) {}

  private record Candidate(UUID id, String owner, int maxRunning) {}

  private ClaimRound claimOnce(String worker, Duration lease, List<String> excludedOwners) {
    Instant now = clock.instant();
    Optional<Candidate> candidate = jdbc.sql("""
            with live as (
                select owner, count(*) as running from jobs
                 where state = 'RUNNING' and lease_expires_at >= :now
                 group by owner)
            select j.id, j.owner, coalesce(t.max_running_jobs, :maxRunning)
              from jobs j
              left join live l on l.owner = j.owner
              left join tenants t on t.id = j.owner
              left join tenant_claims c on c.owner = j.owner
             where (j.state = 'QUEUED'
                    or (j.state = 'RUNNING' and j.lease_expires_at < :now
                        and j.attempts < j.max_attempts and not j.cancel_requested))
               and coalesce(l.running, 0) < coalesce(t.max_running_jobs, :maxRunning)
               and not (j.owner = any(:excluded))
             order by coalesce(l.running, 0), c.last_claim nulls first, j.priority desc, j.created_at
             limit 1
               for update of j skip locked""")
        .param("now", ts(now))
        .param("maxRunning", quotas.maxRunningJobs())
        .param("excluded", excludedOwners.toArray(String[]::new))
        .query((rs, i) -> new Candidate(rs.getObject(1, UUID.class), rs.getString(2), rs.getInt(3)))
        .optional();
    if (candidate.isEmpty()) {
      return new ClaimRound(null, null);
    }
    Candidate c = candidate.get();
    // Waits for a concurrent claim of the same tenant to commit, so the recount below sees it.
    jdbc.sql("""
            insert into tenant_claims (owner, last_claim, last_claimed_at) values (?, nextval('tenant_claim_order'), ?)
            on conflict (owner) do update set last_claim = excluded.last_claim, last_claimed_at = excluded.last_claimed_at""")
        .params(c.owner(), ts(now))
        .update();
    int running = jdbc.sql("""
            select count(*) from jobs where owner = ? and state = 'RUNNING' and lease_expires_at >= ?""")
        .params(c.owner(), ts(now))
        .query(Integer.class)
        .single();
    if (running >= c.maxRunning()) {
      return new ClaimRound(null, c.owner());
    }
    int attempt = jdbc.sql("""
            update jobs
               set state = 'RUNNING', lease_owner = :worker, lease_expires_at = :expires,
                   attempts = attempts + 1, started_at = coalesce(started_at, :now), updated_at = :now
             where id = :id
            returning attempts""")
        .param("worker", worker)
        .param("expires", ts(now.plus(lease)))
        .param("now", ts(now))
        .param("id", c.id())
        .query(Integer.class)
        .single();
    return new ClaimRound(new Claim(c.id(), attempt, worker), null);
  }

  // --- Fair claim (tenancy): end ---------------------------------------------------------------

  /**
   * Ends jobs whose lease expired and that may not be claimed again: those out of attempts fail
   * with a reason; those whose cancellation was requested become CANCELLED.
   *
   * @return how many jobs were ended
   */
  public int expireExhausted() {
    Instant now = clock.instant();
    return jdbc.sql("""
            update jobs
               set state = case when cancel_requested then 'CANCELLED' else 'FAILED' end,
                   error = case when cancel_requested then null else jsonb_build_object(
                       'type', 'https://modelpress.dev/problems/attempts-exhausted',
                       'title', 'The job''s workers kept dying',
                       'status', 500,
                       'detail', 'the worker running this job stopped without finishing (crash, kill or lost lease) '
                                 || attempts || ' time(s); max attempts is ' || max_attempts) end,
                   finished_at = :now, updated_at = :now, lease_owner = null, lease_expires_at = null
             where state = 'RUNNING' and lease_expires_at < :now
               and (attempts >= max_attempts or cancel_requested)""")
        .param("now", ts(now))
        .update();
  }

  /** Renews the lease and records progress (when not null); tells whether the lease is still ours. */
  public Beat heartbeat(UUID jobId, String worker, Duration lease, String progressJson) {
    Instant now = clock.instant();
    return jdbc.sql("""
            update jobs
               set lease_expires_at = :expires, updated_at = :now,
                   progress = coalesce(cast(:progress as jsonb), progress)
             where id = :id and lease_owner = :worker and state = 'RUNNING'
            returning cancel_requested""")
        .param("expires", ts(now.plus(lease)))
        .param("now", ts(now))
        .param("progress", progressJson)
        .param("id", jobId)
        .param("worker", worker)
        .query((rs, i) -> new Beat(true, rs.getBoolean(1)))
        .optional()
        .orElse(new Beat(false, false));
  }

  /** Marks the job done and records its artifacts, if this worker still holds the lease. */
  public boolean succeed(Claim claim, String reportSummaryJson, String progressJson, List<NewArtifact> artifacts) {
    return complete(claim, "SUCCEEDED", reportSummaryJson, progressJson, artifacts);
  }

  /**
   * Marks the job cancelled but keeps what it produced before the cancel (a search's best model
   * and partial report), fenced on the lease exactly like {@link #succeed}.
   */
  public boolean cancelledWithArtifacts(Claim claim, String reportSummaryJson, String progressJson,
      List<NewArtifact> artifacts) {
    return complete(claim, "CANCELLED", reportSummaryJson, progressJson, artifacts);
  }

  private boolean complete(Claim claim, String state, String reportSummaryJson, String progressJson,
      List<NewArtifact> artifacts) {
    Instant now = clock.instant();
    Boolean done = tx.execute(status -> {
      int updated = jdbc.sql("""
              update jobs
                 set state = :state, report_summary = cast(:report as jsonb),
                     progress = coalesce(cast(:progress as jsonb), progress),
                     finished_at = :now, updated_at = :now, lease_owner = null, lease_expires_at = null
               where id = :id and lease_owner = :worker and state = 'RUNNING'""")
          .param("state", state)
          .param("report", reportSummaryJson)
          .param("progress", progressJson)
          .param("now", ts(now))
          .param("id", claim.jobId())
          .param("worker", claim.worker())
          .update();
      if (updated == 0) {
        return false;
      }
      for (NewArtifact a : artifacts) {
        jdbc.sql("""
                insert into artifacts (job_id, name, storage_key, content_type, bytes, sha256, created_at)
                values (?, ?, ?, ?, ?, ?, ?)""")
            .params(claim.jobId(), a.name(), a.storageKey(), a.contentType(), a.bytes(), a.sha256(), ts(now))
            .update();
      }
      return true;
    });
    return Boolean.TRUE.equals(done);
  }

  /** Marks the job failed with a problem document (JSON), if this worker still holds the lease. */
  public boolean fail(Claim claim, String problemJson) {
    return finish(claim, "FAILED", problemJson);
  }

  /** Marks the job cancelled, if this worker still holds the lease. */
  public boolean cancelled(Claim claim) {
    return finish(claim, "CANCELLED", null);
  }

  private boolean finish(Claim claim, String state, String problemJson) {
    Instant now = clock.instant();
    return jdbc.sql("""
            update jobs
               set state = :state, error = cast(:error as jsonb), finished_at = :now, updated_at = :now,
                   lease_owner = null, lease_expires_at = null
             where id = :id and lease_owner = :worker and state = 'RUNNING'""")
        .param("state", state)
        .param("error", problemJson)
        .param("now", ts(now))
        .param("id", claim.jobId())
        .param("worker", claim.worker())
        .update() == 1;
  }

  /**
   * Hands a job back to the queue on graceful shutdown: it becomes QUEUED again and the attempt
   * it used is not counted, since nothing went wrong with the job.
   */
  public boolean release(Claim claim) {
    Instant now = clock.instant();
    boolean released = jdbc.sql("""
            update jobs
               set state = case when cancel_requested then 'CANCELLED' else 'QUEUED' end,
                   finished_at = case when cancel_requested then :now else null end,
                   attempts = greatest(attempts - 1, 0), progress = null,
                   lease_owner = null, lease_expires_at = null, updated_at = :now
             where id = :id and lease_owner = :worker and state = 'RUNNING'""")
        .param("now", ts(now))
        .param("id", claim.jobId())
        .param("worker", claim.worker())
        .update() == 1;
    if (released) {
      notifyQueued(claim.jobId());
    }
    return released;
  }

  /** Wakes idle workers; inside a transaction the notification is delivered at commit. */
  public void notifyQueued(UUID jobId) {
    jdbc.sql("select pg_notify(?, ?)").params(QUEUED_CHANNEL, jobId.toString()).query(Object.class).optional();
  }

  /** The outcome of a cancellation request. */
  public enum CancelOutcome { CANCELLED, REQUESTED, ALREADY_CANCELLED, ALREADY_FINISHED, NOT_FOUND }

  /**
   * Cancels a queued job at once, or flags a running one and notifies its worker, which stops at
   * its next checkpoint.
   */
  public CancelOutcome requestCancel(UUID jobId, String owner) {
    Instant now = clock.instant();
    Optional<String> before = jdbc.sql("""
            update jobs j
               set state = case when j.state = 'QUEUED' then 'CANCELLED' else j.state end,
                   cancel_requested = true,
                   finished_at = case when j.state = 'QUEUED' then :now else j.finished_at end,
                   updated_at = :now
              from jobs old
             where j.id = :id and j.owner = :owner and old.id = j.id and j.state in ('QUEUED', 'RUNNING')
            returning old.state""")
        .param("now", ts(now))
        .param("id", jobId)
        .param("owner", owner)
        .query(String.class)
        .optional();
    if (before.isPresent()) {
      if ("RUNNING".equals(before.get())) {
        jdbc.sql("select pg_notify(?, ?)").params(CANCEL_CHANNEL, jobId.toString()).query(Object.class).optional();
        return CancelOutcome.REQUESTED;
      }
      return CancelOutcome.CANCELLED;
    }
    Optional<String> state = jdbc.sql("select state from jobs where id = ? and owner = ?")
        .params(jobId, owner).query(String.class).optional();
    if (state.isEmpty()) {
      return CancelOutcome.NOT_FOUND;
    }
    return "CANCELLED".equals(state.get()) ? CancelOutcome.ALREADY_CANCELLED : CancelOutcome.ALREADY_FINISHED;
  }

  private static OffsetDateTime ts(Instant instant) {
    return instant.atOffset(ZoneOffset.UTC);
  }
}
