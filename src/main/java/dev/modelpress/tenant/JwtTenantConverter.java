package dev.modelpress.tenant;

import dev.modelpress.system.TenantPrincipal;
import java.util.Arrays;
import java.util.Collection;
import org.springframework.core.convert.converter.Converter;
import org.springframework.security.authentication.AbstractAuthenticationToken;
import org.springframework.security.oauth2.jwt.Jwt;
import org.springframework.security.oauth2.server.resource.InvalidBearerTokenException;

/**
 * Maps a validated OIDC/OAuth2 JWT to a tenant: the tenant claim must name a registered tenant
 * (an identity provider cannot create tenants by minting tokens); the role claim grants admin.
 */
final class JwtTenantConverter implements Converter<Jwt, AbstractAuthenticationToken> {

  private final TenantService tenants;
  private final SecurityProperties props;

  JwtTenantConverter(TenantService tenants, SecurityProperties props) {
    this.tenants = tenants;
    this.props = props;
  }

  @Override
  public AbstractAuthenticationToken convert(Jwt jwt) {
    Object claim = jwt.getClaims().get(props.tenantClaim());
    if (!(claim instanceof String tenant) || tenant.isBlank()) {
      throw new InvalidBearerTokenException("the token has no '" + props.tenantClaim() + "' claim naming a tenant");
    }
    TenantService.Tenant row = tenants.find(tenant).orElseThrow(() ->
        new InvalidBearerTokenException("tenant '" + tenant + "' named by the token is not registered"));
    boolean admin = roles(jwt.getClaims().get(props.roleClaim())).contains(props.adminRole());
    String subject = jwt.getSubject() == null ? "?" : jwt.getSubject();
    return new TenantAuthentication(new TenantPrincipal(row.id(), "jwt:" + subject, admin), row.overrides());
  }

  private static Collection<String> roles(Object claim) {
    return switch (claim) {
      case Collection<?> c -> c.stream().map(String::valueOf).toList();
      case String s -> Arrays.asList(s.split("[\\s,]+"));
      case null, default -> java.util.List.of();
    };
  }
}
