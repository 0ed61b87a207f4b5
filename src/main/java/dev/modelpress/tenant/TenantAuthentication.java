package dev.modelpress.tenant;

import dev.modelpress.system.TenantPrincipal;
import java.util.List;
import org.springframework.security.authentication.AbstractAuthenticationToken;
import org.springframework.security.core.GrantedAuthority;
import org.springframework.security.core.authority.SimpleGrantedAuthority;

/** An authenticated tenant (by API key or OIDC token), with its quota overrides for admission control. */
final class TenantAuthentication extends AbstractAuthenticationToken {

  private static final List<GrantedAuthority> MEMBER = List.of(new SimpleGrantedAuthority("ROLE_MEMBER"));
  private static final List<GrantedAuthority> ADMIN =
      List.of(new SimpleGrantedAuthority("ROLE_MEMBER"), new SimpleGrantedAuthority("ROLE_ADMIN"));

  private final TenantPrincipal principal;
  private final Limits overrides;

  TenantAuthentication(TenantPrincipal principal, Limits overrides) {
    super(principal.admin() ? ADMIN : MEMBER);
    this.principal = principal;
    this.overrides = overrides;
    setAuthenticated(true);
  }

  @Override
  public TenantPrincipal getPrincipal() {
    return principal;
  }

  /** Never kept: the key or token is checked once and forgotten. */
  @Override
  public Object getCredentials() {
    return null;
  }

  @Override
  public String getName() {
    return principal.tenant() + "/" + principal.credential();
  }

  Limits overrides() {
    return overrides;
  }
}
