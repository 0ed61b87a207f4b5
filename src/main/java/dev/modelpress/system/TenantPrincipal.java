package dev.modelpress.system;

/**
 * The authenticated caller: the tenant whose rows it may see, and which credential it used.
 *
 * @param tenant the tenant id (the {@code owner} of every row the caller creates)
 * @param credential the API key prefix, or {@code jwt:<subject>} for an OIDC token: for logs
 * @param admin whether the credential may manage tenants and keys
 */
public record TenantPrincipal(String tenant, String credential, boolean admin) {}
