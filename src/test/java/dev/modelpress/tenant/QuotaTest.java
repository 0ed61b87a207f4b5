package dev.modelpress.tenant;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.http.HttpRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;

/** Stored-bytes quota (refused before storing, nothing left behind) and the per-tenant request rate. */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = "modelpress.worker.enabled=false")
@ActiveProfiles("test")
class QuotaTest {

  private static final String PROBLEMS = "https://modelpress.dev/problems/";

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;
  @Autowired ArtifactStore store;
  @TempDir Path tmp;

  @Test
  void uploadsOverTheStorageQuotaAreRefusedBeforeStoringAndNothingIsLeft() throws IOException {
    Path model = OnnxGraphBuilder.opset(13).input("x", 1, 64)
        .initializer("w", OnnxGraphBuilder.randomFloats(7, 64 * 64, 1f), 64, 64).matMul("x", "w", "y")
        .output("y").writeTo(tmp);
    long size = Files.size(model);
    // Room for one copy of the model, not two.
    Api small = Tenants.tenantWithKey(new Api(port), "small", "{\"maxStoredBytes\":" + (size + size / 2) + "}");
    Api.Response first = small.postFile("/v1/models", model);
    assertThat(first.status()).as(first.body()).isEqualTo(201);

    // Declared size: refused from the request head alone, before any body byte is sent.
    assertThat(small.postDeclaringLength("/v1/models", size)).isEqualTo(413);

    Api.Response second = small.postFile("/v1/models", model);
    assertThat(second.status()).isEqualTo(413);
    assertThat(second.problemType()).isEqualTo(PROBLEMS + "quota-exceeded");
    assertThat(second.json().get("limit").asLong()).isEqualTo(size + size / 2);
    assertThat(second.json().get("used").asLong()).isEqualTo(size);
    assertThat(second.json().get("requested").asLong()).isEqualTo(size);

    // Chunked (no Content-Length): refused after spooling, before storing.
    Api.Response chunked = small.send(small.request("/v1/models").header("Content-Type", "application/octet-stream")
        .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(readAll(model)))));
    assertThat(chunked.status()).as(chunked.body()).isEqualTo(413);
    assertThat(chunked.problemType()).isEqualTo(PROBLEMS + "quota-exceeded");

    // Datasets count against the same quota.
    assertThat(small.postBytes("/v1/datasets", new byte[(int) size], "application/octet-stream").problemType())
        .isEqualTo(PROBLEMS + "quota-exceeded");

    assertThat(jdbc.sql("select count(*) from models where owner = 'small'").query(Integer.class).single()).isEqualTo(1);
    assertThat(storedObjects()).as("only the first model is in the store").isEqualTo(1);
    JsonNode usage = small.get("/v1/tenant").json().get("usage");
    assertThat(usage.get("storedBytes").asLong()).isEqualTo(size);

    // Deleting frees the room again; other tenants were never affected.
    assertThat(small.delete("/v1/models/" + first.json().get("id").asString()).status()).isEqualTo(204);
    assertThat(small.postFile("/v1/models", model).status()).isEqualTo(201);
    assertThat(new Api(port).postFile("/v1/models", model).status()).isEqualTo(201);
  }

  @Test
  void requestsOverTheRateAre429WithRetryAfterAndOtherTenantsAreUnaffected() {
    Api limited = Tenants.tenantWithKey(new Api(port), "chatty", "{\"requestsPerSecond\":0.5,\"burst\":3}");
    for (int i = 0; i < 3; i++) {
      assertThat(limited.get("/v1/models").status()).as("request %d of the burst", i + 1).isEqualTo(200);
    }
    Api.Response refused = limited.get("/v1/models");
    assertThat(refused.status()).isEqualTo(429);
    assertThat(refused.problemType()).isEqualTo(PROBLEMS + "rate-limited");
    // One token per 2 s: the client is told to wait 2 s (rounded up to whole seconds).
    assertThat(refused.header("Retry-After")).isEqualTo("2");
    assertThat(new Api(port).get("/v1/models").status()).as("another tenant").isEqualTo(200);
    Api.sleep(2100);
    assertThat(limited.get("/v1/models").status()).isEqualTo(200);
  }

  /** Objects in the store under models/ that belong to no model row of tenant "default". */
  private long storedObjects() {
    try (Stream<String> keys = store.list("models/")) {
      return keys.filter(key -> !jdbc.sql("select owner from models where storage_key = ?").param(key)
              .query(String.class).optional().orElse("orphan").equals("default"))
          .count();
    }
  }

  private static byte[] readAll(Path file) {
    try {
      return Files.readAllBytes(file);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
