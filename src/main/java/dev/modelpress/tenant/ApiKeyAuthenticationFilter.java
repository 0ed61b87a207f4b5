package dev.modelpress.tenant;

import dev.modelpress.system.TenantPrincipal;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Optional;
import org.springframework.http.HttpHeaders;
import org.springframework.security.core.context.SecurityContext;
import org.springframework.security.core.context.SecurityContextHolder;
import org.springframework.security.web.AuthenticationEntryPoint;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Authenticates {@code Authorization: Bearer mp_…} or {@code X-API-Key: mp_…}. A presented key that
 * does not check out ends the request with 401 at once, rather than falling through to anonymous.
 * Bearer tokens that are not API keys are left to the OIDC resource server, when configured.
 */
final class ApiKeyAuthenticationFilter extends OncePerRequestFilter {

  static final String HEADER = "X-API-Key";

  private final TenantService tenants;
  private final AuthenticationEntryPoint entryPoint;

  ApiKeyAuthenticationFilter(TenantService tenants, AuthenticationEntryPoint entryPoint) {
    this.tenants = tenants;
    this.entryPoint = entryPoint;
  }

  @Override
  protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws ServletException, IOException {
    String key = presentedKey(request);
    if (key == null) {
      chain.doFilter(request, response);
      return;
    }
    ApiKeys.Parsed parsed = ApiKeys.parse(key);
    Optional<TenantService.KeyGrant> grant = parsed == null ? Optional.empty() : tenants.authenticate(parsed);
    if (grant.isEmpty()) {
      SecurityContextHolder.clearContext();
      entryPoint.commence(request, response,
          new ProblemAuthenticationEntryPoint.RejectedCredential("the API key is unknown, malformed or revoked"));
      return;
    }
    TenantService.KeyGrant g = grant.get();
    SecurityContext context = SecurityContextHolder.getContextHolderStrategy().createEmptyContext();
    context.setAuthentication(new TenantAuthentication(new TenantPrincipal(g.tenant(), g.prefix(), g.admin()),
        g.overrides()));
    SecurityContextHolder.getContextHolderStrategy().setContext(context);
    chain.doFilter(request, response);
  }

  /** The API key in this request, if any: {@code X-API-Key}, or a bearer token in the key format. */
  static String presentedKey(HttpServletRequest request) {
    String header = request.getHeader(HEADER);
    if (header != null && !header.isBlank()) {
      return header.strip();
    }
    String authorization = request.getHeader(HttpHeaders.AUTHORIZATION);
    if (authorization != null && authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
      String token = authorization.substring(7).strip();
      return ApiKeys.looksLikeKey(token) ? token : null;
    }
    return null;
  }
}
