package dev.modelpress.storage;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;

/**
 * A real S3-protocol server for tests: Adobe's S3Mock jar (path in the system property {@code
 * s3mock.jar}, which the build sets) run as a child process on a free loopback port. Started once
 * per JVM by {@link #get()} and stopped by a shutdown hook; its output goes to {@code
 * target/s3mock.log}. S3Mock checks no signatures, so any credentials work.
 *
 * <pre>{@code
 * S3MockServer s3 = S3MockServer.get();
 * String bucket = s3.createBucket();
 * try (S3Client client = s3.client()) { ... }
 * }</pre>
 */
public final class S3MockServer {

  /** The region S3Mock serves. */
  public static final String REGION = "us-east-1";

  private static final Duration STARTUP_TIMEOUT = Duration.ofMinutes(3);
  private static S3MockServer instance;

  private final Process process;
  private final URI endpoint;
  private final Path log;

  private S3MockServer(Process process, URI endpoint, Path log) {
    this.process = process;
    this.endpoint = endpoint;
    this.log = log;
  }

  /** The running server, started on first use. */
  public static synchronized S3MockServer get() {
    if (instance == null) {
      instance = start();
    }
    return instance;
  }

  /** The HTTP endpoint, e.g. {@code http://127.0.0.1:41234}. */
  public URI endpoint() {
    return endpoint;
  }

  /** A client configured for this server; the caller closes it. */
  public S3Client client() {
    return clientBuilder().build();
  }

  /** A client builder configured for this server, for tests that add interceptors. */
  public S3ClientBuilder clientBuilder() {
    return S3Client.builder()
        .endpointOverride(endpoint)
        .region(Region.of(REGION))
        .forcePathStyle(true)
        .credentialsProvider(
            StaticCredentialsProvider.create(AwsBasicCredentials.create("test", "test")))
        .httpClientBuilder(UrlConnectionHttpClient.builder());
  }

  /** Creates a bucket with a fresh random name and returns the name. */
  public String createBucket() {
    String name = "test-" + UUID.randomUUID().toString().toLowerCase(Locale.ROOT);
    createBucket(name);
    return name;
  }

  /** Creates the bucket {@code name}. */
  public void createBucket(String name) {
    try (S3Client client = client()) {
      client.createBucket(b -> b.bucket(name));
    }
  }

  private static S3MockServer start() {
    String jarProperty = System.getProperty("s3mock.jar");
    if (jarProperty == null) {
      throw new IllegalStateException(
          "System property s3mock.jar is not set; run the tests through Maven, which copies"
              + " the S3Mock jar to target/s3mock/s3mock.jar and sets it");
    }
    Path jar = Path.of(jarProperty).toAbsolutePath();
    if (!Files.isRegularFile(jar)) {
      throw new IllegalStateException(
          "No S3Mock jar at " + jar + "; run mvn generate-test-resources");
    }
    Path log = jar.getParent().resolveSibling("s3mock.log");
    try {
      Files.deleteIfExists(log); // one log per test JVM; attempts below append to it
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    // The free port is only reserved until we close the probe socket; if someone else takes it
    // first, S3Mock exits at startup and we try again on another one.
    for (int attempt = 1; ; attempt++) {
      S3MockServer server = launch(jar, log, freeLoopbackPort());
      if (server.awaitReady()) {
        return server;
      }
      if (attempt == 3) {
        throw new IllegalStateException(
            "S3Mock exited with code " + server.process.exitValue() + "; see " + log);
      }
    }
  }

  private static S3MockServer launch(Path jar, Path log, int port) {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    List<String> command =
        List.of(
            java.toString(),
            "-Xmx512m",
            "-XX:TieredStopAtLevel=1", // faster start; the server does little work in tests
            "-jar",
            jar.toString(),
            "--http.port=" + port,
            "--server.port=0", // S3Mock's HTTPS connector, unused: any free port
            "--server.address=127.0.0.1",
            "--com.adobe.testing.s3mock.store.region=" + REGION,
            "--spring.main.banner-mode=off");
    Process process;
    try {
      process =
          new ProcessBuilder(command)
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
              .start();
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot start S3Mock: " + command, e);
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> stop(process), "s3mock-shutdown"));
    return new S3MockServer(process, URI.create("http://127.0.0.1:" + port), log);
  }

  /** True once the server answers, false if it exited; throws if it hangs. */
  private boolean awaitReady() {
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    HttpRequest listBuckets =
        HttpRequest.newBuilder(endpoint.resolve("/")).timeout(Duration.ofSeconds(10)).build();
    long deadline = System.nanoTime() + STARTUP_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        return false;
      }
      try {
        if (http.send(listBuckets, HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
          return true;
        }
      } catch (IOException e) {
        // Not listening yet.
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
      try {
        Thread.sleep(200);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    stop(process);
    throw new IllegalStateException("S3Mock did not answer at " + endpoint + "; see " + log);
  }

  private static void stop(Process process) {
    process.destroy();
    try {
      if (!process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  private static int freeLoopbackPort() {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
