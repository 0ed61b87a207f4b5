package dev.modelpress.job;

import dev.modelpress.api.dto.Job;
import dev.modelpress.system.PgNotifications;
import java.io.IOException;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.SmartLifecycle;
import org.springframework.stereotype.Component;
import org.springframework.web.servlet.mvc.method.annotation.SseEmitter;
import tools.jackson.databind.json.JsonMapper;

/**
 * Fans job changes out to Server-Sent Event streams. The database tells every process about every
 * change (a trigger NOTIFYs {@code modelpress_job_events} with {@code <job id>:<event_seq>}, see
 * V2), so a worker in another pod is observed like a local one. Per watched job, one task at a time
 * re-reads the job (a short read, no transaction kept) and offers the snapshot to each stream,
 * which sends only what is newer than what it sent; bursts of notifications coalesce into one
 * read. Emitters hold no connection; a slow client delays only its own job's task.
 */
@Component
class JobEventStreams implements SmartLifecycle {

  private static final Logger log = LoggerFactory.getLogger(JobEventStreams.class);

  /** A job as a client sees it at one change. */
  record Snapshot(long seq, JobState state, boolean cancelRequested, String jobJson, String progressJson) {
    boolean terminal() {
      return state == JobState.SUCCEEDED || state == JobState.FAILED || state == JobState.CANCELLED;
    }
  }

  private final JobService service;
  private final JobController views; // renders a job exactly as GET /v1/jobs/{id} does
  private final JsonMapper json;
  private final JobEventProperties props;
  private final Map<UUID, Channel> channels = new ConcurrentHashMap<>();
  private final ExecutorService readers = Executors.newVirtualThreadPerTaskExecutor();
  private ScheduledExecutorService ticker;
  private volatile boolean active;

  JobEventStreams(JobService service, JobController views, JsonMapper json, JobEventProperties props,
      PgNotifications notifications) {
    this.service = service;
    this.views = views;
    this.json = json;
    this.props = props;
    notifications.subscribe(JobQueue.EVENTS_CHANNEL, this::onNotification);
  }

  /**
   * Opens a stream of the job's events after {@code lastEventId} (-1 for all); the first event is
   * sent as soon as the job is read.
   */
  SseEmitter open(UUID jobId, long lastEventId) {
    SseEmitter emitter = new SseEmitter(props.timeout().toMillis());
    EventStream stream = new EventStream(emitter, lastEventId);
    Channel channel = channels.compute(jobId, (id, c) -> {
      Channel ch = c == null ? new Channel(id) : c;
      ch.streams.add(stream);
      return ch;
    });
    Runnable remove = () -> detach(jobId, stream);
    emitter.onCompletion(remove);
    emitter.onTimeout(() -> {
      stream.closed = true;
      emitter.complete();
    });
    emitter.onError(e -> remove.run());
    channel.poke();
    return emitter;
  }

  /** Streams open in this process. */
  int openStreams() {
    return channels.values().stream().mapToInt(c -> c.streams.size()).sum();
  }

  private void detach(UUID jobId, EventStream stream) {
    stream.closed = true;
    channels.computeIfPresent(jobId, (id, c) -> {
      c.streams.remove(stream);
      return c.streams.isEmpty() ? null : c;
    });
  }

  private void onNotification(String payload) {
    if (payload == null) { // (re)connected: changes may have been missed
      channels.values().forEach(Channel::poke);
      return;
    }
    int colon = payload.indexOf(':');
    try {
      UUID id = UUID.fromString(colon < 0 ? payload : payload.substring(0, colon));
      Channel channel = channels.get(id);
      if (channel != null) {
        channel.poke();
      }
    } catch (IllegalArgumentException ignored) {
      // Not one of ours.
    }
  }

  private Optional<Snapshot> load(UUID jobId) {
    return service.find(jobId).map(j -> {
      Job dto = views.toDto(j);
      String progress = dto.getProgress() == null ? null : json.writeValueAsString(dto.getProgress());
      return new Snapshot(j.getEventSeq(), j.getState(), j.isCancelRequested(), json.writeValueAsString(dto), progress);
    });
  }

  /** The streams watching one job, and the single task that reads it for them. */
  private final class Channel {
    final UUID jobId;
    final Set<EventStream> streams = ConcurrentHashMap.newKeySet();
    final AtomicBoolean pending = new AtomicBoolean();
    final AtomicBoolean reading = new AtomicBoolean();

    Channel(UUID jobId) {
      this.jobId = jobId;
    }

    void poke() {
      pending.set(true);
      if (active && reading.compareAndSet(false, true)) {
        readers.execute(this::drain);
      }
    }

    private void drain() {
      try {
        while (pending.getAndSet(false)) {
          Optional<Snapshot> snapshot;
          try {
            snapshot = load(jobId);
          } catch (RuntimeException e) {
            log.warn("Could not read job {} for its event streams: {}", jobId, e.toString());
            continue; // the next notification or heartbeat tries again
          }
          if (snapshot.isEmpty()) {
            streams.forEach(s -> s.emitter.complete());
            continue;
          }
          for (EventStream s : streams) {
            s.offer(snapshot.get());
          }
        }
      } finally {
        reading.set(false);
        if (pending.get()) {
          poke();
        }
      }
    }
  }

  /** One client's stream: remembers what it has sent so every event it sends is newer. */
  private final class EventStream {
    final SseEmitter emitter;
    long lastSeq;
    JobState lastState;
    boolean lastCancel;
    volatile boolean closed;
    boolean first = true;

    EventStream(SseEmitter emitter, long lastEventId) {
      this.emitter = emitter;
      this.lastSeq = lastEventId;
    }

    synchronized void offer(Snapshot s) {
      if (closed) {
        return;
      }
      if (first && lastSeq > s.seq()) {
        lastSeq = -1; // an id this job never had (another job's, or a restored database): start over
      }
      first = false;
      try {
        if (s.seq() > lastSeq) {
          boolean stateEvent = lastState == null || s.state() != lastState || s.cancelRequested() != lastCancel
              || s.progressJson() == null;
          emitter.send(SseEmitter.event().id(Long.toString(s.seq())).name(stateEvent ? "state" : "progress")
              .data(stateEvent ? s.jobJson() : s.progressJson()));
          lastSeq = s.seq();
          lastState = s.state();
          lastCancel = s.cancelRequested();
        }
        if (s.terminal()) {
          // Sent now, or seen before the client reconnected: nothing more will come.
          closed = true;
          emitter.complete();
        }
      } catch (IOException | IllegalStateException e) {
        // The client went away; the emitter's error callback detaches it.
        closed = true;
      }
    }

    synchronized void keepAlive() {
      if (closed) {
        return;
      }
      try {
        emitter.send(SseEmitter.event().comment("keepalive"));
      } catch (IOException | IllegalStateException e) {
        closed = true;
      }
    }
  }

  @Override
  public synchronized void start() {
    active = true;
    ticker = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().name("modelpress-sse-heartbeat")
        .daemon().unstarted(r));
    long period = props.heartbeat().toMillis();
    ticker.scheduleAtFixedRate(() -> channels.values().forEach(c -> {
      c.streams.forEach(EventStream::keepAlive);
      c.poke();
    }), period, period, TimeUnit.MILLISECONDS);
  }

  /** Ends every open stream before the web server's graceful shutdown waits for requests. */
  @Override
  public synchronized void stop() {
    active = false;
    if (ticker != null) {
      ticker.shutdownNow();
    }
    channels.values().forEach(c -> c.streams.forEach(s -> {
      s.closed = true;
      s.emitter.complete();
    }));
  }

  @Override
  public boolean isRunning() {
    return active;
  }

  @Override
  public int getPhase() {
    return Integer.MAX_VALUE - 1024;
  }
}
