package dev.modelpress.webhook;

import dev.modelpress.job.JobQueue;
import dev.modelpress.system.PgNotifications;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.context.SmartLifecycle;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Component;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * Delivers queued webhooks. Claiming a due row pushes its {@code next_attempt_at} past the delivery
 * timeout in one short statement ({@code FOR UPDATE SKIP LOCKED}), which is the dispatcher's lease:
 * any number of dispatchers in any number of processes never send the same attempt twice at once,
 * and a dispatcher that dies mid-delivery only delays the retry. The POST happens outside any
 * transaction; its outcome is then recorded, fenced on the attempt number, in one transaction:
 * a 2xx answer delivers the webhook, anything else schedules the next attempt after the configured
 * backoff until {@code max-attempts}, when the webhook is given up (FAILED). Redirects are not
 * followed (a 3xx is a failed attempt), so a receiver cannot bounce deliveries elsewhere.
 */
@Component
@ConditionalOnBooleanProperty(name = "modelpress.webhooks.dispatcher", matchIfMissing = true)
class WebhookDispatcher implements SmartLifecycle {

  private static final Logger log = LoggerFactory.getLogger(WebhookDispatcher.class);
  private static final int MAX_ERROR_CHARS = 500;

  /** A webhook claimed for one delivery attempt. */
  record Due(UUID id, UUID jobId, String url, String eventType, int attempt, String payload) {}

  /** How an attempt ended; the tag of the delivery counter. */
  enum Outcome { success, http_error, network_error }

  private final JdbcClient jdbc;
  private final TransactionTemplate tx;
  private final WebhookSigner signer;
  private final WebhookPayloads payloads;
  private final WebhookProperties props;
  private final Clock clock;
  private final HttpClient http;
  private final Map<Outcome, Counter> deliveries;
  private final Counter exhausted;
  private final Semaphore wakeups = new Semaphore(0);
  private volatile boolean active;
  private Thread thread;

  WebhookDispatcher(JdbcClient jdbc, TransactionTemplate tx, ObjectProvider<WebhookSigner> signer, WebhookPayloads payloads,
      WebhookProperties props, Clock clock, MeterRegistry meters, PgNotifications notifications) {
    this.jdbc = jdbc;
    this.tx = tx;
    this.signer = signer.getIfAvailable(); // none: callbacks are refused, so nothing is ever queued
    this.payloads = payloads;
    this.props = props;
    this.clock = clock;
    this.http = HttpClient.newBuilder()
        .connectTimeout(props.timeout())
        .followRedirects(HttpClient.Redirect.NEVER)
        .build();
    this.deliveries = new java.util.EnumMap<>(Outcome.class);
    for (Outcome o : Outcome.values()) {
      deliveries.put(o, Counter.builder("modelpress.webhooks.deliveries")
          .description("Webhook delivery attempts by outcome")
          .tag("outcome", o.name())
          .register(meters));
    }
    this.exhausted = Counter.builder("modelpress.webhooks.exhausted")
        .description("Webhooks given up after max-attempts failed deliveries")
        .register(meters);
    notifications.subscribe(JobQueue.WEBHOOKS_CHANNEL, payload -> wakeups.release());
  }

  @Override
  public synchronized void start() {
    if (signer == null) {
      return;
    }
    active = true;
    thread = Thread.ofPlatform().name("modelpress-webhooks").daemon().start(this::loop);
  }

  @Override
  public synchronized void stop() {
    active = false;
    wakeups.release();
    if (thread != null) {
      try {
        thread.join(props.timeout().toMillis() + 1000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  @Override
  public boolean isRunning() {
    return active;
  }

  @Override
  public int getPhase() {
    return Integer.MAX_VALUE - 2048;
  }

  private void loop() {
    while (active) {
      try {
        if (deliverDue() < props.batchSize()) {
          wakeups.drainPermits();
          // A retry falls due without a notification: look again at least this often.
          wakeups.tryAcquire(Math.min(props.pollInterval().toMillis(), props.backoffAfter(1).toMillis()),
              TimeUnit.MILLISECONDS);
        }
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException e) {
        log.warn("Webhook dispatcher could not read the outbox: {}", e.toString());
        try {
          Thread.sleep(props.pollInterval().toMillis());
        } catch (InterruptedException ie) {
          return;
        }
      }
    }
  }

  /** Claims the due webhooks and delivers them in parallel; returns how many were claimed. */
  int deliverDue() {
    List<Due> due = claim();
    if (!due.isEmpty()) {
      try (ExecutorService each = Executors.newVirtualThreadPerTaskExecutor()) {
        due.forEach(d -> each.execute(() -> deliver(d)));
      }
    }
    return due.size();
  }

  private List<Due> claim() {
    double leaseSeconds = props.timeout().plusSeconds(30).toMillis() / 1000.0;
    return jdbc.sql("""
            update webhook_outbox o
               set attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => :lease)
             where o.id in (select id from webhook_outbox
                             where state = 'PENDING' and next_attempt_at <= now()
                             order by next_attempt_at
                             for update skip locked
                             limit :n)
            returning o.id, o.job_id, o.url, o.event_type, o.attempts, o.payload""")
        .param("lease", leaseSeconds)
        .param("n", props.batchSize())
        .query((rs, i) -> new Due(rs.getObject(1, UUID.class), rs.getObject(2, UUID.class), rs.getString(3),
            rs.getString(4), rs.getInt(5), rs.getString(6)))
        .list();
  }

  private void deliver(Due due) {
    MDC.put("job", due.jobId().toString());
    try {
      String body = due.payload() != null ? due.payload() : fixPayload(due);
      byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
      long timestamp = clock.instant().getEpochSecond();
      HttpRequest request = HttpRequest.newBuilder(URI.create(due.url()))
          .timeout(props.timeout())
          .header("Content-Type", "application/json")
          .header("User-Agent", "modelpress-webhooks/1")
          .header("webhook-id", due.id().toString())
          .header("webhook-timestamp", Long.toString(timestamp))
          .header("webhook-signature", signer.sign(due.id().toString(), timestamp, bytes))
          .POST(HttpRequest.BodyPublishers.ofByteArray(bytes))
          .build();
      long started = System.nanoTime();
      Integer status = null;
      String error = null;
      try {
        HttpResponse<Void> response = http.send(request, HttpResponse.BodyHandlers.discarding());
        status = response.statusCode();
        if (status / 100 != 2) {
          error = "receiver answered " + status;
        }
      } catch (HttpTimeoutException e) {
        error = "no answer within " + props.timeout().toMillis() + " ms";
      } catch (IOException e) {
        error = e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        error = "interrupted (shutdown)";
      }
      long millis = Duration.ofNanos(System.nanoTime() - started).toMillis();
      record(due, status, error, millis);
    } catch (RuntimeException e) {
      // The payload could not be built or the outcome not saved: the lease runs out and it is retried.
      log.warn("Webhook {} attempt {} could not be completed: {}", due.id(), due.attempt(), e.toString());
    } finally {
      MDC.remove("job");
    }
  }

  /** Builds the body once and stores it, so every attempt sends (and signs) the same bytes. */
  private String fixPayload(Due due) {
    String built = payloads.build(due.jobId(), due.eventType());
    return jdbc.sql("update webhook_outbox set payload = coalesce(payload, :p) where id = :id returning payload")
        .param("p", built)
        .param("id", due.id())
        .query(String.class)
        .single();
  }

  private void record(Due due, Integer status, String error, long millis) {
    Outcome outcome = error == null ? Outcome.success : status != null ? Outcome.http_error : Outcome.network_error;
    boolean last = outcome != Outcome.success && due.attempt() >= props.maxAttempts();
    double retrySeconds = props.backoffAfter(due.attempt()).toMillis() / 1000.0;
    String trimmed = error == null || error.length() <= MAX_ERROR_CHARS ? error : error.substring(0, MAX_ERROR_CHARS);
    tx.executeWithoutResult(s -> {
      jdbc.sql("""
              insert into webhook_deliveries (webhook_id, job_id, attempt, status_code, error, duration_ms, attempted_at)
              values (?, ?, ?, ?, ?, ?, now())""")
          .params(due.id(), due.jobId(), due.attempt(), status, trimmed, millis)
          .update();
      jdbc.sql("""
              update webhook_outbox
                 set state = :state,
                     finished_at = case when :state = 'PENDING' then null else now() end,
                     next_attempt_at = case when :state = 'PENDING' then now() + make_interval(secs => :retry)
                                            else next_attempt_at end
               where id = :id and attempts = :attempt and state = 'PENDING'""")
          .param("state", outcome == Outcome.success ? "DELIVERED" : last ? "FAILED" : "PENDING")
          .param("retry", retrySeconds)
          .param("id", due.id())
          .param("attempt", due.attempt())
          .update();
    });
    deliveries.get(outcome).increment();
    if (outcome == Outcome.success) {
      log.info("Webhook {} ({}) delivered to {} on attempt {} in {} ms", due.id(), due.eventType(), due.url(),
          due.attempt(), millis);
    } else if (last) {
      exhausted.increment();
      log.warn("Webhook {} ({}) to {} given up after {} attempts; last: {}", due.id(), due.eventType(), due.url(),
          due.attempt(), error);
    } else {
      log.info("Webhook {} attempt {} to {} failed ({}); retrying in {}", due.id(), due.attempt(), due.url(), error,
          props.backoffAfter(due.attempt()));
    }
  }
}
