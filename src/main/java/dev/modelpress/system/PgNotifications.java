package dev.modelpress.system;

import java.sql.Connection;
import java.sql.Statement;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import javax.sql.DataSource;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.SmartLifecycle;
import org.springframework.stereotype.Component;

/**
 * One connection per process that LISTENs on the channels other components subscribe to (live job
 * events, due webhooks, queued and cancelled jobs for the workers) and hands each notification's payload to them on this thread, so a handler
 * must return quickly (hand work to its own executor). Subscribers also get a call with a {@code
 * null} payload after every (re)connect: notifications sent while nobody listened are lost, so they
 * should then look at the database themselves.
 */
@Component
public class PgNotifications implements SmartLifecycle {

  private static final Logger log = LoggerFactory.getLogger(PgNotifications.class);

  private final DataSource dataSource;
  private final Map<String, List<Consumer<String>>> subscribers = new ConcurrentHashMap<>();
  private volatile boolean active;
  private Thread thread;

  PgNotifications(DataSource dataSource) {
    this.dataSource = dataSource;
  }

  /**
   * Calls {@code handler} with the payload of every notification on {@code channel}, and with
   * {@code null} after each (re)connect. Subscribe before the context starts (in a constructor).
   */
  public void subscribe(String channel, Consumer<String> handler) {
    if (!channel.matches("[a-z_][a-z0-9_]*")) {
      throw new IllegalArgumentException("not a plain channel name: " + channel);
    }
    subscribers.computeIfAbsent(channel, c -> new CopyOnWriteArrayList<>()).add(handler);
  }

  @Override
  public synchronized void start() {
    active = true;
    thread = Thread.ofPlatform().name("modelpress-notifications").daemon().start(this::listen);
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

  /** Starts after the database is migrated and stops before the pool closes. */
  @Override
  public int getPhase() {
    return Integer.MAX_VALUE - 4096;
  }

  private void listen() {
    while (active) {
      try (Connection connection = dataSource.getConnection()) {
        connection.setAutoCommit(true);
        try (Statement st = connection.createStatement()) {
          for (String channel : subscribers.keySet()) {
            st.execute("LISTEN " + channel);
          }
        }
        PGConnection pg = connection.unwrap(PGConnection.class);
        subscribers.values().forEach(handlers -> handlers.forEach(h -> deliver(h, null)));
        while (active) {
          PGNotification[] notifications = pg.getNotifications(1000);
          if (notifications == null) {
            continue;
          }
          for (PGNotification n : notifications) {
            for (Consumer<String> h : subscribers.getOrDefault(n.getName(), List.of())) {
              deliver(h, n.getParameter());
            }
          }
        }
      } catch (Exception e) {
        if (!active) {
          return;
        }
        log.warn("Notification listener lost its connection ({}); reconnecting", e.toString());
        try {
          Thread.sleep(1000);
        } catch (InterruptedException ie) {
          return;
        }
      }
    }
  }

  private static void deliver(Consumer<String> handler, String payload) {
    try {
      handler.accept(payload);
    } catch (RuntimeException e) {
      log.warn("Notification handler failed: {}", e.toString());
    }
  }
}
