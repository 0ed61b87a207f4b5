package dev.modelpress.job;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Component;

/**
 * {@code modelpress.jobs.queue{state}}: jobs by state, from one {@code select state, count(*)} that
 * is cached for a few seconds, so frequent scrapes by several Prometheus servers cost one query.
 * Every process reports the same cluster-wide numbers (the table is shared): aggregate with {@code
 * max}, not {@code sum}.
 */
@Component
class JobQueueMetrics {

  private static final Logger log = LoggerFactory.getLogger(JobQueueMetrics.class);
  private static final Duration TTL = Duration.ofSeconds(5);

  private final JdbcClient jdbc;
  private Map<JobState, Long> counts = new EnumMap<>(JobState.class);
  private long readAt;

  JobQueueMetrics(JdbcClient jdbc, MeterRegistry meters) {
    this.jdbc = jdbc;
    for (JobState state : JobState.values()) {
      Gauge.builder("modelpress.jobs.queue", this, m -> m.count(state))
          .description("Jobs in each state (whole database)")
          .tag("state", state.name())
          .register(meters);
    }
  }

  private synchronized double count(JobState state) {
    long now = System.nanoTime();
    if (readAt == 0 || now - readAt > TTL.toNanos()) {
      try {
        Map<JobState, Long> fresh = new EnumMap<>(JobState.class);
        jdbc.sql("select state, count(*) from jobs group by state")
            .query((rs, i) -> fresh.put(JobState.valueOf(rs.getString(1)), rs.getLong(2)))
            .list();
        counts = fresh;
        readAt = now;
      } catch (RuntimeException e) {
        log.debug("Could not count jobs: {}", e.toString());
        return Double.NaN;
      }
    }
    return counts.getOrDefault(state, 0L);
  }
}
