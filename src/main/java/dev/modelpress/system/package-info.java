/**
 * Cross-cutting concerns: RFC 9457 problem responses, the embedded PostgreSQL default, the clock,
 * and the caller's identity (owner).
 */
package dev.modelpress.system;
