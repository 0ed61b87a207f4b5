package dev.modelpress.tenant;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.testing.Api;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.ActiveProfiles;

/** With no configured key, the first start generates an admin key, writes it owner-only, and only once. */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=false", "modelpress.security.bootstrap.key="})
@ActiveProfiles("test")
class BootstrapAdminKeyTest {

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;
  @Autowired BootstrapAdminKey bootstrap;
  @Autowired SecurityProperties props;

  @Test
  void theGeneratedKeyIsWrittenOwnerOnlyAndAdministersTheDefaultTenant() throws Exception {
    Path keyFile = props.bootstrap().keyFile().toAbsolutePath();
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(keyFile))).isEqualTo("rw-------");
    String key = Files.readString(keyFile).strip();
    assertThat(key).matches("mp_[a-z0-9]{12}_[A-Za-z0-9_-]{43}").isNotEqualTo(Api.TEST_ADMIN_KEY);
    Api admin = new Api(port).withKey(key);
    Api.Response tenants = admin.get("/v1/tenants");
    assertThat(tenants.status()).as(tenants.body()).isEqualTo(200);
    assertThat(tenants.json().findValuesAsString("id")).containsExactly("default");
    assertThat(new Api(port).get("/v1/tenant").status()).as("the test key was not provisioned").isEqualTo(401);

    // A second start on the same database creates nothing and leaves the file alone.
    bootstrap.afterSingletonsInstantiated();
    assertThat(jdbc.sql("select count(*) from api_keys").query(Integer.class).single()).isEqualTo(1);
    assertThat(Files.readString(keyFile).strip()).isEqualTo(key);
  }
}
