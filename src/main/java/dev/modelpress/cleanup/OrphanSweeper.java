package dev.modelpress.cleanup;

import dev.modelpress.storage.ArtifactStore;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * Finds objects in the artifact store that no row refers to, and rows whose object is missing.
 *
 * <p>An object under {@code models/}, {@code datasets/} or {@code jobs/} is referenced when a
 * {@code models}, {@code datasets} or {@code artifacts} row names its key, or when it belongs to the
 * attempt of a job that is running now ({@code jobs/<id>/attempt-<n>/} with the job RUNNING in
 * attempt n: its worker stores objects before it commits their rows). Anything else is a candidate;
 * it becomes an orphan once it has been a candidate for the grace period, measured across sweeps
 * by this instance, so the store needs no timestamps and an upload between storing and committing
 * is never touched. In {@link CleanupProperties.Mode#DELETE} mode orphans are deleted.
 *
 * <p>Rows whose object is missing are reported, never deleted: they mean lost data an operator
 * must look at.
 */
public class OrphanSweeper {

  private static final Logger log = LoggerFactory.getLogger(OrphanSweeper.class);
  private static final Pattern ATTEMPT = Pattern.compile("jobs/([0-9a-f-]{36})/attempt-(\\d+)/.*");
  /** Training checkpoints outlive an attempt: the next attempt of an unfinished job resumes from them. */
  private static final Pattern CHECKPOINT = Pattern.compile("jobs/([0-9a-f-]{36})/checkpoints/.*");
  private static final List<String> PREFIXES = List.of("models/", "datasets/", "jobs/");

  /**
   * A row that names an object the store does not have.
   *
   * @param table {@code models}, {@code datasets} or {@code artifacts}
   * @param id the row's id ({@code <job id>/<name>} for an artifact)
   * @param storageKey the missing object's key
   */
  public record MissingObject(String table, String id, String storageKey) {}

  /**
   * One sweep's findings.
   *
   * @param orphanObjects keys of objects no row refers to, past the grace period, sorted
   * @param deletedObjects the orphans deleted by this sweep (empty in report mode)
   * @param pendingObjects unreferenced objects still within the grace period
   * @param missingObjects rows whose object is gone
   */
  public record Report(
      Instant at,
      List<String> orphanObjects,
      List<String> deletedObjects,
      int pendingObjects,
      List<MissingObject> missingObjects) {}

  private final ArtifactStore store;
  private final JdbcClient jdbc;
  private final Clock clock;
  private final CleanupProperties props;
  private final Map<String, Instant> firstSeen = new HashMap<>();
  private volatile Report last;

  public OrphanSweeper(ArtifactStore store, JdbcClient jdbc, Clock clock, CleanupProperties props) {
    this.store = store;
    this.jdbc = jdbc;
    this.clock = clock;
    this.props = props;
  }

  /** The findings of the latest sweep, or null before the first. */
  public Report lastReport() {
    return last;
  }

  /** Sweeps the store once, deleting orphans in delete mode, and logs what it found. */
  public synchronized Report sweep() {
    Instant now = clock.instant();
    // Rows first, objects second: an object stored and committed between the two reads is seen as
    // referenced or as a fresh candidate, never as an orphan.
    Set<String> referenced = new HashSet<>();
    List<MissingObject> rows = new ArrayList<>();
    jdbc.sql("select id::text, storage_key from models").query((rs, i) ->
        rows.add(new MissingObject("models", rs.getString(1), rs.getString(2)))).list();
    jdbc.sql("select id::text, storage_key from datasets").query((rs, i) ->
        rows.add(new MissingObject("datasets", rs.getString(1), rs.getString(2)))).list();
    jdbc.sql("select job_id::text || '/' || name, storage_key from artifacts").query((rs, i) ->
        rows.add(new MissingObject("artifacts", rs.getString(1), rs.getString(2)))).list();
    rows.forEach(r -> referenced.add(r.storageKey()));
    Map<UUID, Integer> running = new HashMap<>();
    jdbc.sql("select id, attempts from jobs where state = 'RUNNING'").query((rs, i) ->
        running.put(rs.getObject(1, UUID.class), rs.getInt(2))).list();
    Set<UUID> unfinished = new HashSet<>(running.keySet());
    jdbc.sql("select id from jobs where state = 'QUEUED'").query((rs, i) ->
        unfinished.add(rs.getObject(1, UUID.class))).list();

    Set<String> candidates = new HashSet<>();
    for (String prefix : PREFIXES) {
      try (Stream<String> keys = store.list(prefix)) {
        keys.filter(k -> !referenced.contains(k) && !inRunningAttempt(k, running) && !unfinishedCheckpoint(k, unfinished))
            .forEach(candidates::add);
      }
    }
    firstSeen.keySet().retainAll(candidates);
    List<String> orphans = new ArrayList<>();
    for (String key : candidates) {
      Instant seen = firstSeen.computeIfAbsent(key, k -> now);
      if (!seen.plus(props.grace()).isAfter(now)) {
        orphans.add(key);
      }
    }
    orphans.sort(null);
    List<String> deleted = new ArrayList<>();
    if (props.mode() == CleanupProperties.Mode.DELETE) {
      for (String key : orphans) {
        store.delete(key);
        firstSeen.remove(key);
        deleted.add(key);
      }
    }
    List<MissingObject> missing = rows.stream().filter(r -> store.stat(r.storageKey()).isEmpty()).toList();

    Report report = new Report(now, List.copyOf(orphans), List.copyOf(deleted),
        candidates.size() - orphans.size(), missing);
    if (!orphans.isEmpty()) {
      log.warn("Orphan sweep: {} object(s) without a row{}: {}", orphans.size(),
          deleted.isEmpty() ? "" : " (deleted)", abbreviate(orphans));
    }
    if (!missing.isEmpty()) {
      log.error("Orphan sweep: {} row(s) whose object is missing: {}", missing.size(), abbreviate(missing));
    }
    last = report;
    return report;
  }

  private static boolean inRunningAttempt(String key, Map<UUID, Integer> running) {
    Matcher m = ATTEMPT.matcher(key);
    if (!m.matches()) {
      return false;
    }
    try {
      Integer attempt = running.get(UUID.fromString(m.group(1)));
      return attempt != null && attempt == Integer.parseInt(m.group(2));
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  private static boolean unfinishedCheckpoint(String key, Set<UUID> unfinished) {
    Matcher m = CHECKPOINT.matcher(key);
    try {
      return m.matches() && unfinished.contains(UUID.fromString(m.group(1)));
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  private static String abbreviate(List<?> items) {
    return items.size() <= 20 ? items.toString() : items.subList(0, 20) + " and " + (items.size() - 20) + " more";
  }
}
