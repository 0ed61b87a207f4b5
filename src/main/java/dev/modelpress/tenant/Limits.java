package dev.modelpress.tenant;

/**
 * A tenant's limits. As overrides, a null field means "the global default"; {@link #orDefaults}
 * fills them in.
 */
record Limits(Long maxStoredBytes, Integer maxRunningJobs, Double requestsPerSecond, Integer burst) {

  static final Limits NONE = new Limits(null, null, null, null);

  Limits orDefaults(QuotaProperties defaults) {
    return new Limits(
        maxStoredBytes != null ? maxStoredBytes : defaults.maxStoredBytes().toBytes(),
        maxRunningJobs != null ? maxRunningJobs : defaults.maxRunningJobs(),
        requestsPerSecond != null ? requestsPerSecond : defaults.requestsPerSecond(),
        burst != null ? burst : defaults.burst());
  }
}
