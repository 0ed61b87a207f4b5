/**
 * Tenants and who may act for them: API keys (hashed, revocable), OAuth2/OIDC bearer tokens, the
 * admin API, and admission control (request rate, stored-bytes quota). Every other module learns
 * the caller's tenant through {@link dev.modelpress.system.Owners#current()}.
 */
package dev.modelpress.tenant;
