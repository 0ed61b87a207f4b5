package dev.modelpress.testing;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Reads a Server-Sent Events stream with a plain HTTP client, line by line as the spec frames it:
 * {@code id:}, {@code event:}, {@code data:} fields, a blank line ends an event, {@code :} starts a
 * comment. Events and comments arrive on a queue; the stream's end is {@link #END}.
 */
public final class SseClient implements AutoCloseable {

  /** One event as received. */
  public record Event(String id, String name, String data) {}

  /** Queued when the server closed the stream. */
  public static final Event END = new Event(null, "<end>", null);

  private final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
  private final List<String> comments = java.util.Collections.synchronizedList(new ArrayList<>());
  private final HttpResponse<Stream<String>> response;
  private final Thread reader;

  private SseClient(HttpResponse<Stream<String>> response) {
    this.response = response;
    this.reader = Thread.ofVirtual().start(this::read);
  }

  /** Opens {@code url} with {@code Accept: text/event-stream} and optional header pairs. */
  public static SseClient open(String url, String... headers) throws IOException, InterruptedException {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).header("Accept", "text/event-stream")
        .header("Authorization", "Bearer " + Api.TEST_ADMIN_KEY).GET();
    if (headers.length > 0) {
      b.headers(headers);
    }
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    return new SseClient(http.send(b.build(), HttpResponse.BodyHandlers.ofLines()));
  }

  public int status() {
    return response.statusCode();
  }

  public String header(String name) {
    return response.headers().firstValue(name).orElse(null);
  }

  /** The next event (or {@link #END}); fails if none comes within the timeout. */
  public Event next(Duration timeout) throws InterruptedException {
    Event e = events.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
    if (e == null) {
      throw new AssertionError("no event within " + timeout);
    }
    return e;
  }

  /** Every event up to the end of the stream. */
  public List<Event> untilEnd(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    List<Event> all = new ArrayList<>();
    while (true) {
      Event e = next(Duration.ofNanos(Math.max(1, deadline - System.nanoTime())));
      if (e == END) {
        return all;
      }
      all.add(e);
    }
  }

  public List<String> comments() {
    return List.copyOf(comments);
  }

  private void read() {
    String id = null;
    String name = null;
    StringBuilder data = null;
    try (Stream<String> lines = response.body()) {
      for (String line : (Iterable<String>) lines::iterator) {
        if (line.isEmpty()) {
          if (data != null) {
            events.add(new Event(id, name == null ? "message" : name, data.toString()));
          }
          id = null;
          name = null;
          data = null;
        } else if (line.startsWith(":")) {
          comments.add(line.substring(1).strip());
        } else {
          int colon = line.indexOf(':');
          String field = colon < 0 ? line : line.substring(0, colon);
          String value = colon < 0 ? "" : line.substring(colon + 1);
          if (value.startsWith(" ")) {
            value = value.substring(1);
          }
          switch (field) {
            case "id" -> id = value;
            case "event" -> name = value;
            case "data" -> data = data == null ? new StringBuilder(value) : data.append('\n').append(value);
            default -> { }
          }
        }
      }
    } catch (RuntimeException e) {
      // Closed by us.
    } finally {
      events.add(END);
    }
  }

  @Override
  public void close() {
    reader.interrupt();
    try {
      response.body().close();
    } catch (RuntimeException ignored) {
      // Already closed.
    }
  }
}
