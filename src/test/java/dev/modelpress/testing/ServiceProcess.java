package dev.modelpress.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The service as a real child JVM ({@code dev.modelpress.ModelpressApplication} on this test's
 * classpath, passed in an argfile so ONNX Runtime never sees a long command line), for drills that
 * kill processes. Output goes to {@code <dir>/<name>.log}.
 */
public final class ServiceProcess implements AutoCloseable {

  private final String name;
  private final Process process;
  private final int port;
  private final Path log;

  private ServiceProcess(String name, Process process, int port, Path log) {
    this.name = name;
    this.process = process;
    this.port = port;
    this.log = log;
  }

  /** Starts a service process with these Spring properties; returns without waiting for it. */
  public static ServiceProcess start(Path dir, String name, Map<String, String> properties) {
    try {
      Files.createDirectories(dir);
      int port = freePort();
      List<String> args = new ArrayList<>();
      args.add("-cp");
      args.add(quote(System.getProperty("java.class.path")));
      args.add("--enable-native-access=ALL-UNNAMED");
      args.add("--add-modules");
      args.add("jdk.incubator.vector");
      args.add("-Xmx1g");
      args.add("-XX:+UseSerialGC");
      args.add("-XX:TieredStopAtLevel=1");
      args.add("dev.modelpress.ModelpressApplication");
      args.add("--server.port=" + port);
      // The first process on an empty database creates tenant "default" with the key Api sends.
      args.add("--modelpress.security.bootstrap.key=" + Api.TEST_ADMIN_KEY);
      properties.forEach((k, v) -> args.add(quote("--" + k + "=" + v)));
      Path argfile = dir.resolve(name + ".args");
      Files.write(argfile, args);
      Path log = dir.resolve(name + ".log");
      String java = ProcessHandle.current().info().command().orElse("java");
      Process p = new ProcessBuilder(java, "@" + argfile)
          .redirectErrorStream(true)
          .redirectOutput(log.toFile())
          .start();
      return new ServiceProcess(name, p, port, log);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Waits until the process answers its readiness probe. */
  public ServiceProcess awaitReady(Duration timeout) {
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IllegalStateException(name + " exited with " + process.exitValue() + "; see " + log);
      }
      try {
        HttpResponse<String> r = http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/actuator/health/readiness"))
                .timeout(Duration.ofSeconds(5)).build(),
            HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() == 200) {
          return this;
        }
      } catch (IOException e) {
        // not listening yet
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
      Api.sleep(250);
    }
    throw new IllegalStateException(name + " not ready after " + timeout + "; see " + log);
  }

  public String name() {
    return name;
  }

  public long pid() {
    return process.pid();
  }

  public int port() {
    return port;
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  public Path log() {
    return log;
  }

  /** SIGKILL: no shutdown hook, no graceful hand-back, exactly like a crashed pod. */
  public void kill() {
    process.destroyForcibly();
    try {
      process.waitFor();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    if (process.isAlive()) {
      kill();
    }
  }

  private static String quote(String arg) {
    return "\"" + arg.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }
}
