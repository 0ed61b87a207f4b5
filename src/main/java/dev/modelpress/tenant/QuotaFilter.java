package dev.modelpress.tenant;

import dev.modelpress.system.ApiProblem;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Map;
import org.springframework.http.HttpHeaders;
import org.springframework.security.core.Authentication;
import org.springframework.security.core.context.SecurityContextHolder;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Admission control after authentication: the tenant's request rate (429 with {@code Retry-After})
 * and, for uploads, the stored-bytes quota against the declared {@code Content-Length}, before a
 * byte of the body is read (multipart bodies would otherwise be parsed to disk first).
 */
final class QuotaFilter extends OncePerRequestFilter {

  private final RateLimiter rates;
  private final StorageQuota storage;
  private final QuotaProperties defaults;
  private final ProblemWriter problems;

  QuotaFilter(RateLimiter rates, StorageQuota storage, QuotaProperties defaults, ProblemWriter problems) {
    this.rates = rates;
    this.storage = storage;
    this.defaults = defaults;
    this.problems = problems;
  }

  @Override
  protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws ServletException, IOException {
    Authentication auth = SecurityContextHolder.getContext().getAuthentication();
    if (!(auth instanceof TenantAuthentication tenant)) {
      chain.doFilter(request, response);
      return;
    }
    String owner = tenant.getPrincipal().tenant();
    Limits limits = tenant.overrides().orDefaults(defaults);
    long waitNanos = rates.acquire(owner, limits.requestsPerSecond(), limits.burst());
    if (waitNanos > 0) {
      long seconds = Math.max(1, (waitNanos + 999_999_999L) / 1_000_000_000L);
      response.setHeader(HttpHeaders.RETRY_AFTER, Long.toString(seconds));
      problems.write(request, response, ApiProblem.Kind.RATE_LIMITED, "tenant " + owner + " is over its rate of "
          + limits.requestsPerSecond() + " requests/s (burst " + limits.burst() + "); retry in " + seconds + " s",
          Map.of("retryAfterSeconds", seconds));
      return;
    }
    if (isUpload(request) && request.getContentLengthLong() > 0) {
      try {
        storage.check(owner, request.getContentLengthLong());
      } catch (ApiProblem e) {
        // The body is not read; close the connection rather than drain a huge upload.
        response.setHeader(HttpHeaders.CONNECTION, "close");
        problems.write(request, response, e);
        return;
      }
    }
    chain.doFilter(request, response);
  }

  private static boolean isUpload(HttpServletRequest request) {
    if (!"POST".equals(request.getMethod())) {
      return false;
    }
    String path = request.getRequestURI();
    return path.equals("/v1/models") || path.equals("/v1/datasets");
  }
}
