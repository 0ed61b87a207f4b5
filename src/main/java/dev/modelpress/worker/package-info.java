/**
 * Workers: threads that claim jobs from the PostgreSQL queue, keep their lease alive, report
 * progress, honour cancellation and shutdown between tensors, and record results. Idle workers
 * sleep until PostgreSQL's LISTEN/NOTIFY wakes them; polling is only the fallback.
 */
package dev.modelpress.worker;
