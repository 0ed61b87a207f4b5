package dev.modelpress.worker;

import dev.modelpress.job.JobQueue;
import java.sql.Connection;
import java.sql.Statement;
import java.util.UUID;
import javax.sql.DataSource;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.context.SmartLifecycle;
import org.springframework.stereotype.Component;

/**
 * Holds one connection that LISTENs for queued jobs and cancellation requests, so idle workers
 * start a job within milliseconds of its commit and running jobs stop promptly. If the connection
 * drops (database restart), it reconnects; meanwhile the workers' poll interval keeps things moving.
 */
@Component
@ConditionalOnProperty(prefix = "modelpress.worker", name = "enabled", havingValue = "true", matchIfMissing = true)
class QueueListener implements SmartLifecycle {

  private static final Logger log = LoggerFactory.getLogger(QueueListener.class);

  private final DataSource dataSource;
  private final JobWorkers workers;
  private volatile boolean active;
  private Thread thread;

  QueueListener(DataSource dataSource, JobWorkers workers) {
    this.dataSource = dataSource;
    this.workers = workers;
  }

  @Override
  public synchronized void start() {
    active = true;
    thread = Thread.ofPlatform().name("modelpress-listen").daemon().start(this::listen);
  }

  @Override
  public synchronized void stop() {
    active = false;
    if (thread != null) {
      thread.interrupt();
      try {
        thread.join(2000);
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

  private void listen() {
    while (active) {
      try (Connection connection = dataSource.getConnection()) {
        connection.setAutoCommit(true);
        try (Statement st = connection.createStatement()) {
          st.execute("LISTEN " + JobQueue.QUEUED_CHANNEL);
          st.execute("LISTEN " + JobQueue.CANCEL_CHANNEL);
        }
        PGConnection pg = connection.unwrap(PGConnection.class);
        // Jobs queued while we were not listening are found by this first poll.
        workers.wake();
        while (active) {
          PGNotification[] notifications = pg.getNotifications(1000);
          if (notifications == null) {
            continue;
          }
          for (PGNotification n : notifications) {
            if (JobQueue.QUEUED_CHANNEL.equals(n.getName())) {
              workers.wake();
            } else if (JobQueue.CANCEL_CHANNEL.equals(n.getName())) {
              try {
                workers.cancel(UUID.fromString(n.getParameter()));
              } catch (IllegalArgumentException ignored) {
                // Not one of ours.
              }
            }
          }
        }
      } catch (Exception e) {
        if (!active) {
          return;
        }
        log.warn("Queue listener lost its connection ({}); reconnecting", e.toString());
        try {
          Thread.sleep(1000);
        } catch (InterruptedException ie) {
          return;
        }
      }
    }
  }
}
