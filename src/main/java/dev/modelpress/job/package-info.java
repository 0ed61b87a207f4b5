/**
 * Jobs: submission (validated against the model before queuing, idempotent with a key), the
 * PostgreSQL table that is the queue (claims, leases, attempts, cancellation), listing and
 * artifact download.
 */
package dev.modelpress.job;
