package dev.modelpress.cleanup;

import dev.modelpress.storage.ArtifactStore;
import java.time.Clock;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.actuate.endpoint.annotation.ReadOperation;
import org.springframework.boot.actuate.endpoint.annotation.WriteOperation;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.SmartLifecycle;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * The sweeper, its schedule and the {@code orphans} actuator endpoint ({@code GET} the last report,
 * {@code POST} to sweep now): docs/hardening.md.
 */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(CleanupProperties.class)
class CleanupConfiguration {

  @Bean
  OrphanSweeper orphanSweeper(ArtifactStore store, JdbcClient jdbc, Clock clock, CleanupProperties props) {
    return new OrphanSweeper(store, jdbc, clock, props);
  }

  @Bean
  OrphansEndpoint orphansEndpoint(OrphanSweeper sweeper) {
    return new OrphansEndpoint(sweeper);
  }

  @Bean
  SweepSchedule sweepSchedule(OrphanSweeper sweeper, CleanupProperties props) {
    return new SweepSchedule(sweeper, props);
  }

  @Endpoint(id = "orphans")
  static class OrphansEndpoint {
    private final OrphanSweeper sweeper;

    OrphansEndpoint(OrphanSweeper sweeper) {
      this.sweeper = sweeper;
    }

    @ReadOperation
    public OrphanSweeper.Report last() {
      return sweeper.lastReport();
    }

    @WriteOperation
    public OrphanSweeper.Report sweep() {
      return sweeper.sweep();
    }
  }

  /** Runs the sweep every {@code interval} on one daemon thread; a failed sweep is logged and retried next time. */
  static class SweepSchedule implements SmartLifecycle {
    private static final Logger log = LoggerFactory.getLogger(SweepSchedule.class);
    private final OrphanSweeper sweeper;
    private final CleanupProperties props;
    private ScheduledExecutorService executor;

    SweepSchedule(OrphanSweeper sweeper, CleanupProperties props) {
      this.sweeper = sweeper;
      this.props = props;
    }

    @Override
    public synchronized void start() {
      if (!props.enabled()) {
        return;
      }
      executor = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().name("modelpress-orphan-sweep").daemon().unstarted(r));
      long period = props.interval().toMillis();
      executor.scheduleWithFixedDelay(() -> {
        try {
          sweeper.sweep();
        } catch (RuntimeException e) {
          log.warn("Orphan sweep failed: {}", e.toString());
        }
      }, period, period, TimeUnit.MILLISECONDS);
    }

    @Override
    public synchronized void stop() {
      if (executor != null) {
        executor.shutdownNow();
        executor = null;
      }
    }

    @Override
    public synchronized boolean isRunning() {
      return executor != null;
    }
  }
}
