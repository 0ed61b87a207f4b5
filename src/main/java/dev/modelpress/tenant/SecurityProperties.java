package dev.modelpress.tenant;

import java.nio.file.Path;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Authentication settings. OIDC itself is enabled by Spring Boot's
 * {@code spring.security.oauth2.resourceserver.jwt.*} properties; these say how a token maps to a
 * tenant and a role.
 *
 * @param tenantClaim the JWT claim holding the tenant id; the tenant must exist
 * @param roleClaim the JWT claim holding the caller's roles (a list or a space-separated string)
 * @param adminRole the role value in {@code roleClaim} that grants the admin role
 * @param bootstrap the first admin key, created at first start
 */
@ConfigurationProperties("modelpress.security")
record SecurityProperties(
    @DefaultValue("tenant") String tenantClaim,
    @DefaultValue("roles") String roleClaim,
    @DefaultValue("admin") String adminRole,
    @DefaultValue Bootstrap bootstrap) {

  /**
   * @param enabled create a tenant and an admin key when the database has no tenant at all
   * @param tenant id of that first tenant
   * @param key use this key instead of generating one (e.g. injected from a secret); it is then
   *     neither logged nor written to {@code keyFile}
   * @param keyFile where a generated key is written (owner-only permissions)
   */
  record Bootstrap(
      @DefaultValue("true") boolean enabled,
      @DefaultValue("default") String tenant,
      String key,
      @DefaultValue("data/bootstrap-admin-key") Path keyFile) {}
}
