package dev.modelpress.drill;

import dev.modelpress.testing.ServiceProcess;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One external PostgreSQL (zonky, on a fixed data directory and port so it can be restarted) and
 * one filesystem artifact store shared by any number of service processes, as on Kubernetes.
 */
final class DrillCluster implements AutoCloseable {

  final Path dir;
  final int pgPort;
  private EmbeddedPostgres postgres;
  private final List<ServiceProcess> processes = new ArrayList<>();
  private int started;

  DrillCluster(Path dir) {
    this.dir = dir;
    startPostgres(0);
    this.pgPort = postgres.getPort();
  }

  private void startPostgres(int port) {
    try {
      postgres = EmbeddedPostgres.builder()
          .setDataDirectory(dir.resolve("postgres"))
          // Never clean: zonky would delete the directory on close, and a restart must find the data.
          .setCleanDataDirectory(false)
          .setPort(port)
          .start();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  void stopPostgres() throws IOException {
    postgres.close();
  }

  void restartPostgres() {
    startPostgres(pgPort);
  }

  Path storeRoot() {
    return dir.resolve("artifacts");
  }

  /** Common properties: the shared database and store, short leases, fast heartbeats. */
  Map<String, String> properties(String name, boolean workers, Map<String, String> extra) {
    Map<String, String> p = new LinkedHashMap<>();
    p.put("spring.datasource.url", "jdbc:postgresql://127.0.0.1:" + pgPort + "/postgres");
    p.put("spring.datasource.username", "postgres");
    p.put("spring.datasource.hikari.connection-timeout", "2000");
    p.put("modelpress.storage.filesystem.root", storeRoot().toString());
    p.put("modelpress.uploads.spool-dir", dir.resolve("spool-" + name).toString());
    p.put("modelpress.worker.work-dir", dir.resolve("work-" + name).toString());
    p.put("modelpress.worker.enabled", Boolean.toString(workers));
    p.put("modelpress.worker.lease", "3s");
    p.put("modelpress.worker.heartbeat", "500ms");
    p.put("modelpress.worker.poll-interval", "1s");
    p.put("modelpress.jobs.max-attempts", "10");
    p.put("modelpress.cleanup.enabled", "false");
    p.putAll(extra);
    return p;
  }

  ServiceProcess start(String role, boolean workers, Map<String, String> extra) {
    String name = role + "-" + (++started);
    ServiceProcess p = ServiceProcess.start(dir.resolve("logs"), name, properties(name, workers, extra));
    processes.add(p);
    return p;
  }

  javax.sql.DataSource dataSource() {
    return postgres.getPostgresDatabase();
  }

  Connection connect() throws SQLException {
    return postgres.getPostgresDatabase().getConnection();
  }

  /** Rows of a query as maps of column name to value. */
  List<Map<String, Object>> query(String sql) {
    try (Connection c = connect(); ResultSet rs = c.createStatement().executeQuery(sql)) {
      List<Map<String, Object>> rows = new ArrayList<>();
      int n = rs.getMetaData().getColumnCount();
      while (rs.next()) {
        Map<String, Object> row = new HashMap<>();
        for (int i = 1; i <= n; i++) {
          row.put(rs.getMetaData().getColumnLabel(i), rs.getObject(i));
        }
        rows.add(row);
      }
      return rows;
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() throws IOException {
    processes.forEach(ServiceProcess::close);
    postgres.close();
    // Keep the processes' logs for a failed CI run: target/drill-logs/<dir name>/.
    Path keep = Path.of("target", "drill-logs", dir.getFileName().toString());
    java.nio.file.Files.createDirectories(keep);
    try (var logs = java.nio.file.Files.list(dir.resolve("logs"))) {
      for (Path log : logs.filter(p -> p.toString().endsWith(".log")).toList()) {
        java.nio.file.Files.copy(log, keep.resolve(log.getFileName()),
            java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      }
    }
  }
}
