package dev.modelpress.tenant;

import dev.modelpress.api.TenantsApi;
import dev.modelpress.api.dto.ApiKey;
import dev.modelpress.api.dto.ApiKeyRequest;
import dev.modelpress.api.dto.ApiKeyRole;
import dev.modelpress.api.dto.NewApiKey;
import dev.modelpress.api.dto.Tenant;
import dev.modelpress.api.dto.TenantQuotas;
import dev.modelpress.api.dto.TenantRequest;
import dev.modelpress.api.dto.TenantUsage;
import dev.modelpress.system.Owners;
import java.net.URI;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.RestController;

/**
 * The admin API for tenants and keys (the security chain admits only admin credentials to
 * {@code /v1/tenants/**} and {@code /v1/keys/**}), and {@code GET /v1/tenant} for every caller.
 */
@RestController
class TenantController implements TenantsApi {

  private final TenantService tenants;
  private final QuotaProperties defaults;

  TenantController(TenantService tenants, QuotaProperties defaults) {
    this.tenants = tenants;
    this.defaults = defaults;
  }

  @Override
  public ResponseEntity<Tenant> createTenant(TenantRequest request) {
    TenantService.Tenant created = tenants.create(request.getId(), request.getName(), overrides(request.getQuotas()));
    return ResponseEntity.created(URI.create("/v1/tenants/" + created.id())).body(toDto(created));
  }

  @Override
  public ResponseEntity<List<Tenant>> listTenants() {
    return ResponseEntity.ok(tenants.list().stream().map(this::toDto).toList());
  }

  @Override
  public ResponseEntity<Tenant> getTenant(String tenantId) {
    return ResponseEntity.ok(toDto(tenants.get(tenantId)));
  }

  @Override
  public ResponseEntity<Tenant> getCurrentTenant() {
    return ResponseEntity.ok(toDto(tenants.get(Owners.current())));
  }

  @Override
  public ResponseEntity<Tenant> setTenantQuotas(String tenantId, TenantQuotas quotas) {
    return ResponseEntity.ok(toDto(tenants.setQuotas(tenantId, overrides(quotas))));
  }

  @Override
  public ResponseEntity<NewApiKey> createApiKey(String tenantId, ApiKeyRequest request) {
    String role = request == null || request.getRole() == null ? "member" : request.getRole().getValue();
    TenantService.NewKey key = tenants.createKey(tenantId, request == null ? null : request.getName(), role);
    TenantService.KeyInfo info = key.info();
    return ResponseEntity.status(HttpStatus.CREATED)
        .body(new NewApiKey(key.key(), info.prefix(), info.tenant(), ApiKeyRole.fromValue(info.role()),
            time(info.createdAt())).name(info.name()));
  }

  @Override
  public ResponseEntity<List<ApiKey>> listApiKeys(String tenantId) {
    return ResponseEntity.ok(tenants.keys(tenantId).stream()
        .map(k -> new ApiKey(k.prefix(), k.tenant(), ApiKeyRole.fromValue(k.role()), time(k.createdAt()))
            .name(k.name()).lastUsedAt(time(k.lastUsedAt())).revokedAt(time(k.revokedAt())))
        .toList());
  }

  @Override
  public ResponseEntity<Void> revokeApiKey(String prefix) {
    tenants.revoke(prefix);
    return ResponseEntity.noContent().build();
  }

  private Tenant toDto(TenantService.Tenant t) {
    TenantService.Usage usage = tenants.usage(t.id());
    return new Tenant(t.id(), t.name(), time(t.createdAt()), quotas(t.overrides()),
        quotas(t.overrides().orDefaults(defaults)),
        new TenantUsage(usage.storedBytes(), usage.runningJobs(), usage.queuedJobs()));
  }

  private static Limits overrides(TenantQuotas q) {
    return q == null ? Limits.NONE
        : new Limits(q.getMaxStoredBytes(), q.getMaxRunningJobs(), q.getRequestsPerSecond(), q.getBurst());
  }

  private static TenantQuotas quotas(Limits l) {
    return new TenantQuotas().maxStoredBytes(l.maxStoredBytes()).maxRunningJobs(l.maxRunningJobs())
        .requestsPerSecond(l.requestsPerSecond()).burst(l.burst());
  }

  private static OffsetDateTime time(Instant instant) {
    return instant == null ? null : instant.atOffset(ZoneOffset.UTC);
  }
}
