package dev.modelpress.tenant;

import dev.modelpress.system.ApiProblem;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.springframework.dao.DuplicateKeyException;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Service;

/**
 * Tenants and their API keys in PostgreSQL. Key checks read the database on every request (one
 * indexed lookup), so a revocation is effective for the very next request in every process; no
 * cache to go stale.
 */
@Service
class TenantService {

  /** A tenant row. */
  record Tenant(String id, String name, Instant createdAt, Limits overrides) {}

  /** A key as listed: never the secret. */
  record KeyInfo(String prefix, String tenant, String name, String role, Instant createdAt, Instant lastUsedAt,
      Instant revokedAt) {}

  /** A key just created; {@code key} is the only copy of the secret that will ever exist. */
  record NewKey(String key, KeyInfo info) {}

  /** What a valid key grants. */
  record KeyGrant(String tenant, String prefix, boolean admin, Limits overrides) {}

  /** Current consumption of a tenant. */
  record Usage(long storedBytes, int runningJobs, int queuedJobs) {}

  /** Writing last_used_at on every request would turn each read into a write; a minute is precise enough. */
  private static final Duration LAST_USED_GRANULARITY = Duration.ofMinutes(1);

  private final JdbcClient jdbc;
  private final Clock clock;

  TenantService(JdbcClient jdbc, Clock clock) {
    this.jdbc = jdbc;
    this.clock = clock;
  }

  Tenant create(String id, String name, Limits overrides) {
    Instant now = clock.instant();
    try {
      jdbc.sql("""
              insert into tenants (id, name, created_at, max_stored_bytes, max_running_jobs, requests_per_second, burst)
              values (?, ?, ?, ?, ?, ?, ?)""")
          .params(id, name == null || name.isBlank() ? id : name, ts(now), overrides.maxStoredBytes(),
              overrides.maxRunningJobs(), overrides.requestsPerSecond(), overrides.burst())
          .update();
    } catch (DuplicateKeyException e) {
      throw new ApiProblem(ApiProblem.Kind.ALREADY_EXISTS, "tenant " + id + " already exists");
    }
    return get(id);
  }

  Optional<Tenant> find(String id) {
    return jdbc.sql("select * from tenants where id = ?").param(id).query(TenantService::tenant).optional();
  }

  Tenant get(String id) {
    return find(id).orElseThrow(() -> ApiProblem.notFound("tenant", id));
  }

  List<Tenant> list() {
    return jdbc.sql("select * from tenants order by created_at, id").query(TenantService::tenant).list();
  }

  boolean any() {
    return jdbc.sql("select exists(select 1 from tenants)").query(Boolean.class).single();
  }

  Tenant setQuotas(String id, Limits overrides) {
    int updated = jdbc.sql("""
            update tenants set max_stored_bytes = ?, max_running_jobs = ?, requests_per_second = ?, burst = ?
             where id = ?""")
        .params(overrides.maxStoredBytes(), overrides.maxRunningJobs(), overrides.requestsPerSecond(),
            overrides.burst(), id)
        .update();
    if (updated == 0) {
      throw ApiProblem.notFound("tenant", id);
    }
    return get(id);
  }

  NewKey createKey(String tenant, String name, String role) {
    get(tenant);
    return insertKey(tenant, name, role, ApiKeys.generate());
  }

  /** Stores a key whose text was chosen elsewhere (the configured bootstrap key). */
  NewKey insertKey(String tenant, String name, String role, ApiKeys.Generated key) {
    Instant now = clock.instant();
    jdbc.sql("""
            insert into api_keys (id, tenant, prefix, hash, name, role, created_at)
            values (?, ?, ?, ?, ?, ?, ?)""")
        .params(UUID.randomUUID(), tenant, key.prefix(), key.hash(), name, role, ts(now))
        .update();
    return new NewKey(key.key(), new KeyInfo(key.prefix(), tenant, name, role, now, null, null));
  }

  List<KeyInfo> keys(String tenant) {
    get(tenant);
    return jdbc.sql("""
            select prefix, tenant, name, role, created_at, last_used_at, revoked_at
              from api_keys where tenant = ? order by created_at, prefix""")
        .param(tenant)
        .query((rs, i) -> new KeyInfo(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4),
            instant(rs, 5), instant(rs, 6), instant(rs, 7)))
        .list();
  }

  /** Revokes a key; revoking it again keeps the first revocation time. */
  void revoke(String prefix) {
    int found = jdbc.sql("update api_keys set revoked_at = coalesce(revoked_at, ?) where prefix = ?")
        .params(ts(clock.instant()), prefix)
        .update();
    if (found == 0) {
      throw ApiProblem.notFound("key", prefix);
    }
  }

  /** Checks a presented key: known prefix, not revoked, secret matching the stored hash. */
  Optional<KeyGrant> authenticate(ApiKeys.Parsed key) {
    record Row(String tenant, String hash, String role, Instant lastUsed, boolean revoked, Limits limits) {}
    Optional<Row> row = jdbc.sql("""
            select k.tenant, k.hash, k.role, k.last_used_at, k.revoked_at is not null,
                   t.max_stored_bytes, t.max_running_jobs, t.requests_per_second, t.burst
              from api_keys k join tenants t on t.id = k.tenant
             where k.prefix = ?""")
        .param(key.prefix())
        .query((rs, i) -> new Row(rs.getString(1), rs.getString(2), rs.getString(3), instant(rs, 4), rs.getBoolean(5),
            limits(rs, 6)))
        .optional();
    if (row.isEmpty() || row.get().revoked() || !ApiKeys.matches(key.secret(), row.get().hash())) {
      return Optional.empty();
    }
    Instant now = clock.instant();
    if (row.get().lastUsed() == null || row.get().lastUsed().isBefore(now.minus(LAST_USED_GRANULARITY))) {
      jdbc.sql("update api_keys set last_used_at = ? where prefix = ?").params(ts(now), key.prefix()).update();
    }
    return Optional.of(new KeyGrant(row.get().tenant(), key.prefix(), "admin".equals(row.get().role()),
        row.get().limits()));
  }

  Usage usage(String tenant) {
    long stored = StorageQuota.storedBytes(jdbc, tenant);
    record Counts(int running, int queued) {}
    Counts counts = jdbc.sql("""
            select count(*) filter (where state = 'RUNNING'), count(*) filter (where state = 'QUEUED')
              from jobs where owner = ? and state in ('RUNNING', 'QUEUED')""")
        .param(tenant)
        .query((rs, i) -> new Counts(rs.getInt(1), rs.getInt(2)))
        .single();
    return new Usage(stored, counts.running(), counts.queued());
  }

  private static Tenant tenant(ResultSet rs, int row) throws SQLException {
    return new Tenant(rs.getString("id"), rs.getString("name"), instant(rs, rs.findColumn("created_at")),
        limits(rs, rs.findColumn("max_stored_bytes")));
  }

  /** The four override columns, in table order, starting at {@code first}. */
  static Limits limits(ResultSet rs, int first) throws SQLException {
    return new Limits(rs.getObject(first, Long.class), rs.getObject(first + 1, Integer.class),
        rs.getObject(first + 2, Double.class), rs.getObject(first + 3, Integer.class));
  }

  private static Instant instant(ResultSet rs, int column) throws SQLException {
    OffsetDateTime t = rs.getObject(column, OffsetDateTime.class);
    return t == null ? null : t.toInstant();
  }

  private static OffsetDateTime ts(Instant instant) {
    return instant.atOffset(ZoneOffset.UTC);
  }
}
