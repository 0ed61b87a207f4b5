package dev.modelpress.tenant;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.util.unit.DataSize;

/**
 * Global per-tenant limits; each can be overridden per tenant (columns on {@code tenants}).
 *
 * @param maxStoredBytes bytes of models + datasets + job artifacts a tenant may hold
 * @param maxRunningJobs jobs of one tenant running at once; further queued jobs wait, they do not fail
 * @param requestsPerSecond sustained request rate of one tenant (token-bucket refill, per process)
 * @param burst requests a tenant may send back to back (token-bucket size)
 */
@ConfigurationProperties("modelpress.quotas")
public record QuotaProperties(
    @DefaultValue("100GB") DataSize maxStoredBytes,
    @DefaultValue("4") int maxRunningJobs,
    @DefaultValue("50") double requestsPerSecond,
    @DefaultValue("100") int burst) {}
