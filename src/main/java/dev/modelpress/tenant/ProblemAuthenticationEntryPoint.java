package dev.modelpress.tenant;

import dev.modelpress.system.ApiProblem;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Map;
import org.springframework.security.access.AccessDeniedException;
import org.springframework.security.core.AuthenticationException;
import org.springframework.security.oauth2.core.OAuth2AuthenticationException;
import org.springframework.security.web.AuthenticationEntryPoint;
import org.springframework.security.web.access.AccessDeniedHandler;

/**
 * 401 and 403 as problem documents. A 401 carries {@code WWW-Authenticate: Bearer} (RFC 6750),
 * with {@code error="invalid_token"} when a credential was presented and rejected.
 */
final class ProblemAuthenticationEntryPoint implements AuthenticationEntryPoint, AccessDeniedHandler {

  private final ProblemWriter problems;

  ProblemAuthenticationEntryPoint(ProblemWriter problems) {
    this.problems = problems;
  }

  @Override
  public void commence(HttpServletRequest request, HttpServletResponse response, AuthenticationException e)
      throws IOException {
    boolean presented = e instanceof RejectedCredential || e instanceof OAuth2AuthenticationException;
    String detail = switch (e) {
      case RejectedCredential r -> r.getMessage();
      case OAuth2AuthenticationException o -> "the bearer token was rejected: "
          + (o.getError().getDescription() != null ? o.getError().getDescription() : o.getError().getErrorCode());
      default -> "this endpoint needs a credential: Authorization: Bearer <API key or token>, or X-API-Key";
    };
    response.setHeader("WWW-Authenticate", presented
        ? "Bearer realm=\"modelpress\", error=\"invalid_token\"" : "Bearer realm=\"modelpress\"");
    problems.write(request, response, ApiProblem.Kind.UNAUTHORIZED, detail, Map.of());
  }

  @Override
  public void handle(HttpServletRequest request, HttpServletResponse response, AccessDeniedException e)
      throws IOException {
    problems.write(request, response, ApiProblem.Kind.FORBIDDEN,
        "managing tenants and keys needs a credential with the admin role", Map.of());
  }

  /** A presented API key that is malformed, unknown or revoked; the message is safe to show. */
  static final class RejectedCredential extends AuthenticationException {
    RejectedCredential(String message) {
      super(message);
    }
  }
}
