package dev.modelpress.testing;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A small real-HTTP client for tests against a running service (no MockMvc: bytes really stream).
 * It authenticates with {@link #TEST_ADMIN_KEY} (the bootstrap admin key of tenant "default" that
 * the test profile provisions) unless told otherwise with {@link #withKey} or {@link #anonymous}.
 */
public final class Api {

  /** The admin key of tenant "default" in every test context (application-test.yml). */
  public static final String TEST_ADMIN_KEY = "mp_testadmin000_modelpress-test-admin-key-not-a-secret-0000";

  /** A response: status, headers and the body parsed as JSON when it is JSON. */
  public record Response(int status, java.net.http.HttpHeaders headers, String body, JsonNode json) {
    public String header(String name) {
      return headers.firstValue(name).orElse(null);
    }

    public String problemType() {
      return json == null || json.get("type") == null ? null : json.get("type").asString();
    }
  }

  private static final JsonMapper JSON = JsonMapper.builder().build();
  private final HttpClient http;
  private final String base;
  private final String key;

  public Api(int port) {
    this(HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build(), "http://127.0.0.1:" + port,
        TEST_ADMIN_KEY);
  }

  private Api(HttpClient http, String base, String key) {
    this.http = http;
    this.base = base;
    this.key = key;
  }

  /** The same client authenticating with another API key (or bearer token). */
  public Api withKey(String key) {
    return new Api(http, base, key);
  }

  /** The same client sending no credential. */
  public Api anonymous() {
    return new Api(http, base, null);
  }

  /** A request builder for {@code path} carrying this client's credential. */
  public HttpRequest.Builder request(String path) {
    HttpRequest.Builder b = HttpRequest.newBuilder(uri(path));
    if (key != null) {
      b.header("Authorization", "Bearer " + key);
    }
    return b;
  }

  /** Sends any request built with {@link #request}. */
  public Response send(HttpRequest.Builder builder) {
    return sendString(builder);
  }

  public Response put(String path, String json) {
    return send(request(path).header("Content-Type", "application/json")
        .PUT(HttpRequest.BodyPublishers.ofString(json)));
  }

  public String base() {
    return base;
  }

  public Response get(String path) {
    return send(request(path).GET());
  }

  public Response delete(String path) {
    return send(request(path).DELETE());
  }

  public Response postJson(String path, String json) {
    return postJson(path, json, null);
  }

  public Response postJson(String path, String json, String idempotencyKey) {
    HttpRequest.Builder b = request(path).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(json));
    if (idempotencyKey != null) {
      b.header("Idempotency-Key", idempotencyKey);
    }
    return send(b);
  }

  public Response postFile(String path, Path file) {
    try {
      return send(request(path).header("Content-Type", "application/octet-stream")
          .POST(HttpRequest.BodyPublishers.ofFile(file)));
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  public Response postBytes(String path, byte[] bytes, String contentType) {
    return send(request(path).header("Content-Type", contentType)
        .POST(HttpRequest.BodyPublishers.ofByteArray(bytes)));
  }

  /** A multipart/form-data upload with one {@code file} part. */
  public Response postMultipart(String path, String fileName, byte[] content) {
    String boundary = "modelpress-test-boundary";
    byte[] head = ("--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + fileName
        + "\"\r\nContent-Type: application/octet-stream\r\n\r\n").getBytes();
    byte[] tail = ("\r\n--" + boundary + "--\r\n").getBytes();
    byte[] body = new byte[head.length + content.length + tail.length];
    System.arraycopy(head, 0, body, 0, head.length);
    System.arraycopy(content, 0, body, head.length, content.length);
    System.arraycopy(tail, 0, body, head.length + content.length, tail.length);
    return postBytes(path, body, "multipart/form-data; boundary=" + boundary);
  }

  /**
   * Sends only the request head of a POST declaring {@code declaredLength} body bytes, and reads the
   * status line: shows whether the server refuses a declared size before reading any of the body.
   */
  public int postDeclaringLength(String path, long declaredLength) {
    java.net.URI u = uri(path);
    try (java.net.Socket socket = new java.net.Socket(u.getHost(), u.getPort())) {
      socket.setSoTimeout(10_000);
      String head = "POST " + u.getRawPath() + (u.getRawQuery() == null ? "" : "?" + u.getRawQuery()) + " HTTP/1.1\r\n"
          + "Host: " + u.getHost() + ":" + u.getPort() + "\r\n"
          + "Content-Type: application/octet-stream\r\n"
          + (key == null ? "" : "Authorization: Bearer " + key + "\r\n")
          + "Content-Length: " + declaredLength + "\r\n\r\n";
      socket.getOutputStream().write(head.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      socket.getOutputStream().flush();
      java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(socket.getInputStream(),
          java.nio.charset.StandardCharsets.US_ASCII));
      String line;
      while ((line = in.readLine()) != null) {
        if (line.startsWith("HTTP/1.1 ") && !line.startsWith("HTTP/1.1 100")) {
          return Integer.parseInt(line.substring(9, 12));
        }
      }
      throw new IllegalStateException("no response");
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** Downloads to a file; returns the response with an empty body. */
  public Response download(String path, Path target, String... headers) {
    try {
      HttpRequest.Builder b = request(path).GET();
      if (headers.length > 0) {
        b.headers(headers);
      }
      HttpResponse<Path> r = http.send(b.build(), HttpResponse.BodyHandlers.ofFile(target));
      return new Response(r.statusCode(), r.headers(), "", null);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Raw bytes of a GET, with optional request headers as name/value pairs. */
  public HttpResponse<byte[]> getBytes(String path, String... headers) {
    try {
      HttpRequest.Builder b = request(path).GET();
      if (headers.length > 0) {
        b.headers(headers);
      }
      return http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Polls a job until it reaches one of {@code states} or the timeout passes. */
  public JsonNode awaitJob(String jobId, Duration timeout, String... states) {
    Set<String> wanted = states.length == 0 ? Set.of("SUCCEEDED", "FAILED", "CANCELLED") : Set.of(states);
    long deadline = System.nanoTime() + timeout.toNanos();
    JsonNode job = null;
    while (System.nanoTime() < deadline) {
      job = get("/v1/jobs/" + jobId).json();
      if (wanted.contains(job.get("state").asString())) {
        return job;
      }
      sleep(50);
    }
    throw new AssertionError("job " + jobId + " did not reach " + wanted + " within " + timeout + "; last: " + job);
  }

  public static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private Response sendString(HttpRequest.Builder builder) {
    try {
      HttpResponse<String> r = http.send(builder.timeout(Duration.ofMinutes(2)).build(),
          HttpResponse.BodyHandlers.ofString());
      String type = r.headers().firstValue("Content-Type").orElse("");
      JsonNode node = type.contains("json") && !r.body().isEmpty() ? JSON.readTree(r.body()) : null;
      return new Response(r.statusCode(), r.headers(), r.body(), node);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private URI uri(String path) {
    return URI.create(base + path);
  }
}
