package dev.modelpress.system;

import org.springframework.security.core.Authentication;
import org.springframework.security.core.context.SecurityContextHolder;

/**
 * Who owns a row. Every model, dataset, job and artifact carries an owner; for a request it is the
 * tenant of the authenticated credential (API key or OIDC token). Code that runs outside a request
 * (workers) never calls this: it acts for the owner recorded on the job.
 */
public final class Owners {

  /** The tenant created at first start with the bootstrap admin key; rows from before tenancy belong to it. */
  public static final String DEFAULT = "default";

  private Owners() {}

  /**
   * The owner of the current request.
   *
   * @throws IllegalStateException when no tenant is authenticated: a bug (a /v1 path left open, or
   *     a call from a worker thread), never something to answer with another tenant's data
   */
  public static String current() {
    Authentication auth = SecurityContextHolder.getContext().getAuthentication();
    if (auth != null && auth.isAuthenticated() && auth.getPrincipal() instanceof TenantPrincipal p) {
      return p.tenant();
    }
    throw new IllegalStateException("no authenticated tenant in this thread");
  }
}
