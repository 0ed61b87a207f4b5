package dev.modelpress.tenant;

import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.storage.StoredObject;
import dev.modelpress.system.ApiProblem;
import java.io.IOException;
import java.nio.file.Path;
import java.util.function.Function;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Component;
import org.springframework.transaction.support.TransactionSynchronizationManager;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * The stored-bytes quota: models + datasets + job artifacts of one tenant. An upload is checked
 * three times: its declared size before any byte is read ({@link QuotaFilter}), its real size
 * after spooling and before storing, and again inside the transaction that records it, under a
 * per-tenant lock, so concurrent uploads cannot together overshoot the limit. Job artifacts are
 * not refused (a job's output is smaller than its input); they count towards the next upload.
 */
@Component
public class StorageQuota {

  private final JdbcClient jdbc;
  private final QuotaProperties defaults;
  private final ArtifactStore store;
  private final TransactionTemplate tx;

  StorageQuota(JdbcClient jdbc, QuotaProperties defaults, ArtifactStore store, TransactionTemplate tx) {
    this.jdbc = jdbc;
    this.defaults = defaults;
    this.store = store;
    this.tx = tx;
  }

  /**
   * The last two steps of an upload: stores {@code file} under {@code key}, then in one transaction
   * {@link #checkLocked re-checks} the quota with the stored size and runs {@code record}, which
   * builds and saves the upload's row from the stored object. If recording fails, the object is
   * deleted again, so a refused upload leaves nothing stored.
   *
   * @return what {@code record} returned
   */
  public <T> T storeAndRecord(String owner, String key, Path file, Function<StoredObject, T> record)
      throws IOException {
    StoredObject stored = store.put(key, file);
    try {
      return tx.execute(status -> {
        checkLocked(owner, stored.size());
        return record.apply(stored);
      });
    } catch (RuntimeException e) {
      store.delete(key);
      throw e;
    }
  }

  /**
   * Refuses storing {@code bytes} more for {@code owner} when that would exceed its quota.
   *
   * @throws ApiProblem {@code quota-exceeded} with {@code limit}, {@code used} and {@code requested}
   */
  public void check(String owner, long bytes) {
    java.util.List<Long> override = jdbc.sql("select max_stored_bytes from tenants where id = ?").param(owner)
        .query((rs, i) -> rs.getObject(1, Long.class)).list();
    long limit = override.isEmpty() || override.getFirst() == null
        ? defaults.maxStoredBytes().toBytes() : override.getFirst();
    long used = storedBytes(jdbc, owner);
    if (used + bytes > limit) {
      throw new ApiProblem(ApiProblem.Kind.QUOTA_EXCEEDED, "storing " + bytes + " bytes would take tenant " + owner
          + " to " + (used + bytes) + " bytes; its quota is " + limit + " bytes (" + used + " in use)")
          .with("limit", limit).with("used", used).with("requested", bytes);
    }
  }

  /**
   * {@link #check} under a per-tenant transaction lock: call it in the transaction that inserts the
   * row, so the next upload of the same tenant waits for this one to commit and then counts it.
   */
  public void checkLocked(String owner, long bytes) {
    if (!TransactionSynchronizationManager.isActualTransactionActive()) {
      throw new IllegalStateException("checkLocked needs a transaction");
    }
    jdbc.sql("select pg_advisory_xact_lock(hashtextextended('modelpress-storage:' || ?, 0))")
        .param(owner).query(Object.class).optional();
    check(owner, bytes);
  }

  static long storedBytes(JdbcClient jdbc, String owner) {
    return jdbc.sql("""
            select (select coalesce(sum(bytes), 0) from models where owner = :t)
                 + (select coalesce(sum(bytes), 0) from datasets where owner = :t)
                 + (select coalesce(sum(a.bytes), 0) from artifacts a join jobs j on j.id = a.job_id where j.owner = :t)""")
        .param("t", owner)
        .query(Long.class)
        .single();
  }
}
