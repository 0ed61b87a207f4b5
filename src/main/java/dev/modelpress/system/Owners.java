package dev.modelpress.system;

/**
 * Who owns a row. Every model, dataset, job and artifact carries an owner from the first
 * migration; until authentication lands, every caller is the single default tenant.
 */
public final class Owners {

  /** The tenant of unauthenticated deployments. */
  public static final String DEFAULT = "default";

  private Owners() {}

  /** The owner of the current request. */
  public static String current() {
    return DEFAULT;
  }
}
