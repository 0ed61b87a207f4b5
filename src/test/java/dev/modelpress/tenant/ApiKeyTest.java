package dev.modelpress.tenant;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.testing.Api;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;

/** API keys end to end: 401 problems, roles, keys shown once and stored hashed, revocation at once. */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = "modelpress.worker.enabled=false")
@ActiveProfiles("test")
class ApiKeyTest {

  private static final String PROBLEMS = "https://modelpress.dev/problems/";

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;

  @Test
  void noCredentialIs401ProblemWithBearerChallenge() {
    Api.Response r = new Api(port).anonymous().get("/v1/models");
    assertThat(r.status()).isEqualTo(401);
    assertThat(r.header("Content-Type")).startsWith("application/problem+json");
    assertThat(r.problemType()).isEqualTo(PROBLEMS + "unauthorized");
    assertThat(r.json().get("status").asInt()).isEqualTo(401);
    assertThat(r.json().get("instance").asString()).isEqualTo("/v1/models");
    assertThat(r.header("WWW-Authenticate")).isEqualTo("Bearer realm=\"modelpress\"");
  }

  @Test
  void malformedUnknownAndWrongSecretKeysAre401() {
    Api api = new Api(port);
    String valid = Tenants.newKey(api, "default", "member").get("key").asString();
    String wrongSecret = valid.substring(0, valid.length() - 4) + (valid.endsWith("AAAA") ? "BBBB" : "AAAA");
    String unknownPrefix = "mp_zzzzzzzzzzzz" + valid.substring(15);
    for (String bad : List.of("mp_short_x", "mp_", wrongSecret, unknownPrefix)) {
      Api.Response r = api.withKey(bad).get("/v1/models");
      assertThat(r.status()).as(bad).isEqualTo(401);
      assertThat(r.problemType()).isEqualTo(PROBLEMS + "unauthorized");
      assertThat(r.json().get("detail").asString()).isEqualTo("the API key is unknown, malformed or revoked");
      assertThat(r.header("WWW-Authenticate")).contains("error=\"invalid_token\"");
    }
    assertThat(api.withKey(valid).get("/v1/models").status()).isEqualTo(200);
  }

  @Test
  void xApiKeyHeaderWorksToo() {
    Api api = new Api(port);
    String key = Tenants.newKey(api, "default", "member").get("key").asString();
    Api.Response r = api.anonymous().send(api.anonymous().request("/v1/tenant").header("X-API-Key", key).GET());
    assertThat(r.status()).as(r.body()).isEqualTo(200);
    assertThat(r.json().get("id").asString()).isEqualTo("default");
  }

  @Test
  void aNewKeyIsShownOnceAndStoredOnlyAsTheSha256OfItsSecret() throws Exception {
    Api admin = new Api(port);
    admin.postJson("/v1/tenants", "{\"id\":\"hashing\"}");
    JsonNode created = Tenants.newKey(admin, "hashing", "member");
    String key = created.get("key").asString();
    String prefix = created.get("prefix").asString();
    assertThat(key).matches("mp_[a-z0-9]{12}_[A-Za-z0-9_-]{43}").startsWith("mp_" + prefix + "_");
    String secret = key.substring(16);
    // 43 base64url characters = 32 bytes = 256 bits.
    assertThat(java.util.Base64.getUrlDecoder().decode(secret)).hasSize(32);

    Api.Response listed = admin.get("/v1/tenants/hashing/keys");
    assertThat(listed.json()).hasSize(1);
    assertThat(listed.json().get(0).get("prefix").asString()).isEqualTo(prefix);
    assertThat(listed.json().get(0).has("key")).isFalse();
    assertThat(listed.body()).doesNotContain(secret);

    String row = jdbc.sql("select row_to_json(k)::text from api_keys k where prefix = ?").param(prefix)
        .query(String.class).single();
    assertThat(row).doesNotContain(secret).doesNotContain(key);
    String hash = jdbc.sql("select hash from api_keys where prefix = ?").param(prefix).query(String.class).single();
    assertThat(hash).isEqualTo(HexFormat.of().formatHex(
        MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.US_ASCII))));
    // Nothing anywhere in the table holds a secret in plain text, the bootstrap key's included.
    assertThat(jdbc.sql("select count(*) from api_keys k where row_to_json(k)::text like ?")
        .param("%" + Api.TEST_ADMIN_KEY.substring(16) + "%").query(Integer.class).single()).isZero();
  }

  @Test
  void aRevokedKeyStopsWorkingOnTheNextRequest() {
    Api admin = new Api(port);
    JsonNode created = Tenants.newKey(admin, "default", "member");
    Api user = admin.withKey(created.get("key").asString());
    assertThat(user.get("/v1/models").status()).isEqualTo(200);
    assertThat(admin.delete("/v1/keys/" + created.get("prefix").asString()).status()).isEqualTo(204);
    Api.Response after = user.get("/v1/models");
    assertThat(after.status()).isEqualTo(401);
    assertThat(after.problemType()).isEqualTo(PROBLEMS + "unauthorized");
    JsonNode listed = admin.get("/v1/tenants/default/keys").json();
    JsonNode revoked = null;
    for (JsonNode k : listed) {
      if (k.get("prefix").asString().equals(created.get("prefix").asString())) {
        revoked = k;
      }
    }
    assertThat(revoked).isNotNull();
    assertThat(revoked.get("revokedAt")).isNotNull();
    assertThat(revoked.get("lastUsedAt")).as("used once before revocation").isNotNull();
    assertThat(admin.delete("/v1/keys/nosuchprefix").status()).isEqualTo(404);
  }

  @Test
  void memberKeysCannotManageTenantsButSeeTheirOwn() {
    Api admin = new Api(port);
    Api member = admin.withKey(Tenants.newKey(admin, "default", "member").get("key").asString());
    for (Api.Response r : List.of(member.get("/v1/tenants"), member.postJson("/v1/tenants", "{\"id\":\"evil\"}"),
        member.postJson("/v1/tenants/default/keys", "{}"), member.get("/v1/tenants/default/keys"),
        member.delete("/v1/keys/testadmin000"))) {
      assertThat(r.status()).as(r.body()).isEqualTo(403);
      assertThat(r.problemType()).isEqualTo(PROBLEMS + "forbidden");
    }
    assertThat(admin.get("/v1/tenants/evil").status()).isEqualTo(404);
    Api.Response own = member.get("/v1/tenant");
    assertThat(own.status()).isEqualTo(200);
    assertThat(own.json().get("limits").get("maxRunningJobs").asInt()).isEqualTo(4);
  }

  @Test
  void tenantAdministration() {
    Api admin = new Api(port);
    Api.Response created = admin.postJson("/v1/tenants",
        "{\"id\":\"acme\",\"name\":\"Acme\",\"quotas\":{\"maxRunningJobs\":2}}");
    assertThat(created.status()).as(created.body()).isEqualTo(201);
    assertThat(created.header("Location")).isEqualTo("/v1/tenants/acme");
    assertThat(created.json().get("overrides").get("maxRunningJobs").asInt()).isEqualTo(2);
    assertThat(created.json().get("overrides").has("burst")).isFalse();
    assertThat(created.json().get("limits").get("burst").asInt()).isEqualTo(100);
    assertThat(admin.postJson("/v1/tenants", "{\"id\":\"acme\"}").problemType()).isEqualTo(PROBLEMS + "already-exists");
    assertThat(admin.postJson("/v1/tenants", "{\"id\":\"Not Valid\"}").status()).isIn(400, 422);
    Api.Response updated = admin.put("/v1/tenants/acme/quotas", "{\"burst\":7}");
    assertThat(updated.json().get("limits").get("burst").asInt()).isEqualTo(7);
    assertThat(updated.json().get("limits").get("maxRunningJobs").asInt()).as("override replaced").isEqualTo(4);
    assertThat(admin.get("/v1/tenants").json().findValuesAsString("id")).contains("default", "acme");
    assertThat(admin.postJson("/v1/tenants/nobody/keys", "{}").status()).isEqualTo(404);
  }

  @Test
  void healthAndTheContractNeedNoCredential() {
    Api anonymous = new Api(port).anonymous();
    assertThat(anonymous.get("/actuator/health").status()).isEqualTo(200);
    assertThat(anonymous.getBytes("/openapi.yaml").statusCode()).isEqualTo(200);
  }

  @Test
  void prometheusAnswersWithoutACredentialWhileTheOrphanSweepNeedsAnAdminKey() {
    Api admin = new Api(port);
    Api anonymous = admin.anonymous();
    Api.Response metrics = anonymous.get("/actuator/prometheus");
    assertThat(metrics.status()).isEqualTo(200);
    assertThat(metrics.header("Content-Type")).startsWith("text/plain");
    assertThat(metrics.body()).contains("jvm_memory_used_bytes{", "application=\"modelpress\"");
    assertThat(anonymous.get("/actuator/health/readiness").status()).isEqualTo(200);

    Api.Response noKey = anonymous.get("/actuator/orphans");
    assertThat(noKey.status()).isEqualTo(401);
    assertThat(noKey.problemType()).isEqualTo(PROBLEMS + "unauthorized");
    Api member = admin.withKey(Tenants.newKey(admin, "default", "member").get("key").asString());
    assertThat(member.get("/actuator/orphans").status()).isEqualTo(403);
    assertThat(member.postJson("/actuator/orphans", "{}").status()).isEqualTo(403);
    // mode report: the sweep only lists what it finds.
    Api.Response swept = admin.postJson("/actuator/orphans", "{}");
    assertThat(swept.status()).as(swept.body()).isEqualTo(200);
    assertThat(swept.json().get("orphanObjects").isArray()).isTrue();
    assertThat(admin.get("/actuator/orphans").status()).isEqualTo(200);
  }

  @Test
  void aKeyOfADifferentShapeInTheBearerHeaderIsNotTreatedAsAnApiKey() {
    // No JWT decoder in this context: a non-key bearer token is simply not a credential.
    Api.Response r = new Api(port).withKey("eyJhbGciOiJSUzI1NiJ9.e30.c2ln").get("/v1/models");
    assertThat(r.status()).isEqualTo(401);
    assertThat(r.problemType()).isEqualTo(PROBLEMS + "unauthorized");
  }

}
