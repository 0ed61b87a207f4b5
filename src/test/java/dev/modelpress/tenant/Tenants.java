package dev.modelpress.tenant;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.testing.Api;
import tools.jackson.databind.JsonNode;

/** Test helpers: create tenants and keys through the admin API. */
final class Tenants {

  private Tenants() {}

  /** Creates a tenant (with optional quota JSON) and a member key for it; returns a client using that key. */
  static Api tenantWithKey(Api admin, String id, String quotasJson) {
    Api.Response created = admin.postJson("/v1/tenants", quotasJson == null
        ? "{\"id\":\"" + id + "\"}" : "{\"id\":\"" + id + "\",\"quotas\":" + quotasJson + "}");
    assertThat(created.status()).as(created.body()).isEqualTo(201);
    return admin.withKey(newKey(admin, id, "member").get("key").asString());
  }

  static JsonNode newKey(Api admin, String tenant, String role) {
    Api.Response key = admin.postJson("/v1/tenants/" + tenant + "/keys", "{\"name\":\"test\",\"role\":\"" + role + "\"}");
    assertThat(key.status()).as(key.body()).isEqualTo(201);
    return key.json();
  }
}
