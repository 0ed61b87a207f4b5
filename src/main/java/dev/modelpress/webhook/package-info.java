/**
 * Webhooks: when a job with a {@code callbackUrl} ends, a database trigger queues its webhook in
 * the {@code webhook_outbox} table in the same transaction; {@link dev.modelpress.webhook.WebhookDispatcher}
 * claims due rows with {@code FOR UPDATE SKIP LOCKED}, POSTs the JSON signed in the Standard
 * Webhooks style ({@link dev.modelpress.webhook.WebhookSigner}) outside any transaction, retries
 * with backoff and records every attempt in {@code webhook_deliveries}.
 */
package dev.modelpress.webhook;
