package dev.modelpress.tenant;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.SmartInitializingSingleton;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Component;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * Keeps the one-command start working with authentication on: when the database has no tenant
 * at all, create the bootstrap tenant and an admin key for it. A generated key is printed once in
 * the log and written to a file only its owner can read; a configured key
 * ({@code modelpress.security.bootstrap.key}, e.g. from a Kubernetes secret) is used as given and
 * never echoed. Runs before the web server accepts requests.
 */
@Component
class BootstrapAdminKey implements SmartInitializingSingleton {

  private static final Logger log = LoggerFactory.getLogger(BootstrapAdminKey.class);
  /** Serialises first starts of several processes on one empty database. */
  private static final long LOCK = 0x6d70_626f_6f74L;

  private final TenantService tenants;
  private final JdbcClient jdbc;
  private final TransactionTemplate tx;
  private final SecurityProperties props;

  BootstrapAdminKey(TenantService tenants, JdbcClient jdbc, TransactionTemplate tx, SecurityProperties props) {
    this.tenants = tenants;
    this.jdbc = jdbc;
    this.tx = tx;
    this.props = props;
  }

  @Override
  public void afterSingletonsInstantiated() {
    SecurityProperties.Bootstrap bootstrap = props.bootstrap();
    if (!bootstrap.enabled()) {
      return;
    }
    String configured = bootstrap.key() == null || bootstrap.key().isBlank() ? null : bootstrap.key().strip();
    ApiKeys.Generated key;
    if (configured != null) {
      ApiKeys.Parsed parsed = ApiKeys.parse(configured);
      if (parsed == null) {
        throw new IllegalStateException("modelpress.security.bootstrap.key is not a key of the form "
            + "mp_<12 lowercase letters or digits>_<43 base64url characters>");
      }
      key = new ApiKeys.Generated(configured, parsed.prefix(), ApiKeys.hash(parsed.secret()));
    } else {
      key = ApiKeys.generate();
    }
    Boolean created = tx.execute(status -> {
      jdbc.sql("select pg_advisory_xact_lock(?)").param(LOCK).query(Object.class).optional();
      if (tenants.any()) {
        return false;
      }
      tenants.create(bootstrap.tenant(), "Bootstrap tenant", Limits.NONE);
      tenants.insertKey(bootstrap.tenant(), "bootstrap admin", "admin", key);
      return true;
    });
    if (!Boolean.TRUE.equals(created)) {
      return;
    }
    if (configured != null) {
      log.info("Created tenant '{}' with the configured bootstrap admin key {}", bootstrap.tenant(), key.prefix());
      return;
    }
    Path file = bootstrap.keyFile().toAbsolutePath();
    // Log first: if the file cannot be written, the log is still the one copy of the key.
    log.warn("""

        ==========================================================================================
        First start: created tenant '{}' and its admin API key. It is shown only this once:

            {}

        (also written to {}, readable only by this user). Send it as
        'Authorization: Bearer <key>'; create tenants and keys with POST /v1/tenants.
        ==========================================================================================""",
        bootstrap.tenant(), key.key(), file);
    try {
      writeOwnerOnly(file, key.key());
    } catch (IOException e) {
      log.warn("Could not write the bootstrap admin key to {}: {}", file, e.toString());
    }
  }

  /** Creates the file with owner-only permissions before the key is in it, so it is never readable by others. */
  private static void writeOwnerOnly(Path file, String key) throws IOException {
    Files.createDirectories(file.getParent());
    Files.deleteIfExists(file);
    try {
      Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    } catch (UnsupportedOperationException e) {
      Files.createFile(file);
    }
    Files.writeString(file, key + "\n", StandardCharsets.US_ASCII, StandardOpenOption.TRUNCATE_EXISTING);
  }
}
