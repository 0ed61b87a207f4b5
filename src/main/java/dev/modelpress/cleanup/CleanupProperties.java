package dev.modelpress.cleanup;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * @param enabled whether the sweep runs on a schedule (the actuator endpoint works either way)
 * @param mode {@code report} logs and exposes orphans; {@code delete} also deletes orphan objects
 * @param interval time between scheduled sweeps
 * @param grace how long an object must have been seen without a row before it counts as an orphan,
 *     so an upload or job between storing its object and committing its row is never touched
 */
@ConfigurationProperties("modelpress.cleanup")
public record CleanupProperties(
    @DefaultValue("true") boolean enabled,
    @DefaultValue("report") Mode mode,
    @DefaultValue("1h") Duration interval,
    @DefaultValue("1h") Duration grace) {

  /** What a sweep does with orphan objects. Rows without objects are always only reported. */
  public enum Mode { REPORT, DELETE }
}
