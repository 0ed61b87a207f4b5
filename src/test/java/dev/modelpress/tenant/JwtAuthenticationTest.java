package dev.modelpress.tenant;

import static org.assertj.core.api.Assertions.assertThat;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import com.sun.net.httpserver.HttpServer;
import dev.modelpress.testing.Api;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.NoSuchAlgorithmException;
import java.security.interfaces.RSAPrivateKey;
import java.security.interfaces.RSAPublicKey;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.ActiveProfiles;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * OIDC bearer tokens: the service is a resource server whose JWK set is served by a loopback HTTP
 * server (as an identity provider would); tokens are signed here with a locally generated RSA key.
 * API keys keep working beside them.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = "modelpress.worker.enabled=false")
@ActiveProfiles("test")
class JwtAuthenticationTest {

  private static final String PROBLEMS = "https://modelpress.dev/problems/";
  private static final String ISSUER = "https://idp.example.test/realms/modelpress";
  private static final KeyPair IDP_KEY = rsa();
  private static final KeyPair ROGUE_KEY = rsa();
  private static final HttpServer JWKS = serveJwks();

  @DynamicPropertySource
  static void resourceServer(DynamicPropertyRegistry registry) {
    registry.add("spring.security.oauth2.resourceserver.jwt.jwk-set-uri",
        () -> "http://127.0.0.1:" + JWKS.getAddress().getPort() + "/jwks.json");
    registry.add("spring.security.oauth2.resourceserver.jwt.issuer-uri", () -> ISSUER);
  }

  @AfterAll
  static void stopIdp() {
    JWKS.stop(0);
  }

  @LocalServerPort int port;

  @Test
  void aValidTokenActsForTheTenantInItsClaim() {
    Api admin = new Api(port);
    admin.postJson("/v1/tenants", "{\"id\":\"oidc-tenant\"}");
    Api viaToken = admin.withKey(token(IDP_KEY, Map.of("tenant", "oidc-tenant", "sub", "alice"), 300));
    Api.Response me = viaToken.get("/v1/tenant");
    assertThat(me.status()).as(me.body()).isEqualTo(200);
    assertThat(me.json().get("id").asString()).isEqualTo("oidc-tenant");
    assertThat(viaToken.get("/v1/tenants").status()).as("no admin role in the token").isEqualTo(403);
    // The token's tenant sees nothing of tenant "default".
    assertThat(viaToken.get("/v1/models").json().get("total").asLong()).isZero();
  }

  @Test
  void theRoleClaimGrantsAdmin() {
    Api admin = new Api(port).withKey(token(IDP_KEY, Map.of("tenant", "default", "roles", List.of("admin")), 300));
    assertThat(admin.get("/v1/tenants").status()).isEqualTo(200);
  }

  @Test
  void badTokensAre401Problems() {
    new Api(port).postJson("/v1/tenants", "{\"id\":\"oidc-bad\"}");
    Map<String, String> cases = Map.of(
        "signed by another key", token(ROGUE_KEY, Map.of("tenant", "oidc-bad"), 300),
        "expired", token(IDP_KEY, Map.of("tenant", "oidc-bad"), -120),
        "no tenant claim", token(IDP_KEY, Map.of("sub", "bob"), 300),
        "unregistered tenant", token(IDP_KEY, Map.of("tenant", "nobody-registered-this"), 300),
        "other issuer", token(IDP_KEY, Map.of("tenant", "oidc-bad", "iss", "https://evil.example"), 300),
        "not a JWT", "not.a.jwt");
    cases.forEach((why, token) -> {
      Api.Response r = new Api(port).withKey(token).get("/v1/models");
      assertThat(r.status()).as(why + ": " + r.body()).isEqualTo(401);
      assertThat(r.problemType()).as(why).isEqualTo(PROBLEMS + "unauthorized");
      assertThat(r.header("WWW-Authenticate")).as(why).contains("invalid_token");
    });
    Api.Response unregistered = new Api(port)
        .withKey(token(IDP_KEY, Map.of("tenant", "nobody-registered-this"), 300)).get("/v1/models");
    assertThat(unregistered.json().get("detail").asString()).contains("nobody-registered-this").contains("not registered");
  }

  @Test
  void apiKeysStillWorkBesideOidc() {
    assertThat(new Api(port).get("/v1/tenant").status()).isEqualTo(200);
    assertThat(new Api(port).withKey("mp_testadmin000_wrongwrongwrongwrongwrongwrongwrongwrongwro").get("/v1/tenant")
        .json().get("detail").asString()).isEqualTo("the API key is unknown, malformed or revoked");
  }

  private static String token(KeyPair key, Map<String, Object> claims, long validSeconds) {
    JWTClaimsSet.Builder b = new JWTClaimsSet.Builder()
        .issuer(ISSUER)
        .subject("test-user")
        .issueTime(Date.from(Instant.now().minusSeconds(600)))
        .expirationTime(Date.from(Instant.now().plusSeconds(validSeconds)));
    claims.forEach((k, v) -> {
      switch (k) {
        case "iss" -> b.issuer((String) v);
        case "sub" -> b.subject((String) v);
        default -> b.claim(k, v);
      }
    });
    SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.RS256).keyID("idp-1").build(), b.build());
    try {
      jwt.sign(new RSASSASigner((RSAPrivateKey) key.getPrivate()));
    } catch (JOSEException e) {
      throw new IllegalStateException(e);
    }
    return jwt.serialize();
  }

  private static KeyPair rsa() {
    try {
      KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
      g.initialize(2048);
      return g.generateKeyPair();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static HttpServer serveJwks() {
    try {
      HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
      // Only the real identity provider's public key is published (with the same kid the rogue uses).
      byte[] body = new JWKSet(new RSAKey.Builder((RSAPublicKey) IDP_KEY.getPublic()).keyID("idp-1").build())
          .toString().getBytes(StandardCharsets.UTF_8);
      server.createContext("/jwks.json", exchange -> {
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(200, body.length);
        exchange.getResponseBody().write(body);
        exchange.close();
      });
      server.start();
      return server;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
