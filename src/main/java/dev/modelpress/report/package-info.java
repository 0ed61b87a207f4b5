/**
 * Job reports for people: {@code GET /v1/jobs/{id}/report} serves the stored {@code report.json}
 * as JSON, or renders it as one self-contained HTML page (inline CSS, inline SVG charts drawn on
 * the server, no scripts, fonts or other requests) with size, per-layer error, sensitivity,
 * fidelity, speed and provenance sections.
 */
package dev.modelpress.report;
