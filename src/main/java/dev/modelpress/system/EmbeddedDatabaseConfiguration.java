package dev.modelpress.system;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.autoconfigure.condition.ConditionalOnExpression;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The embedded default: with no {@code spring.datasource.url}, start a real PostgreSQL from the
 * binaries on the classpath, with its data directory on disk so jobs survive a restart. With a URL
 * configured, Spring Boot's own DataSource is used and none of this runs.
 */
@Configuration(proxyBeanMethods = false)
@ConditionalOnExpression("'${spring.datasource.url:}'.isEmpty()")
class EmbeddedDatabaseConfiguration {

  private static final Logger log = LoggerFactory.getLogger(EmbeddedDatabaseConfiguration.class);

  /** One server per data directory per JVM: test contexts that share a directory share the server. */
  private static final Map<Path, EmbeddedPostgres> RUNNING = new HashMap<>();

  @Bean
  DataSource dataSource(EmbeddedDatabaseProperties props) throws IOException {
    EmbeddedPostgres postgres = start(props.dataDir().toAbsolutePath().normalize(), props.port());
    HikariConfig config = new HikariConfig();
    config.setJdbcUrl(postgres.getJdbcUrl("postgres", "postgres"));
    config.setUsername("postgres");
    config.setMaximumPoolSize(props.poolSize());
    config.setPoolName("modelpress-embedded");
    return new HikariDataSource(config);
  }

  static synchronized EmbeddedPostgres start(Path dataDir, int port) throws IOException {
    EmbeddedPostgres running = RUNNING.get(dataDir);
    if (running != null) {
      return running;
    }
    Files.createDirectories(dataDir);
    clearStaleLock(dataDir);
    log.info("Starting embedded PostgreSQL with data in {}", dataDir);
    EmbeddedPostgres postgres = EmbeddedPostgres.builder()
        .setDataDirectory(dataDir)
        .setCleanDataDirectory(false)
        .setPort(port)
        .start();
    log.info("Embedded PostgreSQL listening on 127.0.0.1:{}", postgres.getPort());
    RUNNING.put(dataDir, postgres);
    return postgres;
  }

  /**
   * A process killed with SIGKILL leaves {@code postmaster.pid} behind; if the server it names is
   * gone (or is an orphan of ours still holding the directory), start cleanly instead of failing.
   */
  private static void clearStaleLock(Path dataDir) throws IOException {
    Path pidFile = dataDir.resolve("postmaster.pid");
    if (!Files.exists(pidFile)) {
      return;
    }
    String first = Files.readAllLines(pidFile).stream().findFirst().orElse("").trim();
    try {
      long pid = Long.parseLong(first);
      ProcessHandle.of(pid).ifPresent(orphan -> {
        log.warn("Stopping orphaned embedded PostgreSQL (pid {}) left by an earlier run", pid);
        orphan.destroy();
        orphan.onExit().orTimeout(20, java.util.concurrent.TimeUnit.SECONDS).join();
      });
    } catch (NumberFormatException | java.util.concurrent.CompletionException e) {
      log.warn("Could not interpret {}: {}", pidFile, e.getMessage());
    }
    Files.deleteIfExists(pidFile);
  }
}
