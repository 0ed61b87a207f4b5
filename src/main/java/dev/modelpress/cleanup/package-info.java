/**
 * Consistency between the database and the artifact store: objects no row refers to (left by a
 * worker killed between storing and committing, or an upload that died before its row) and rows
 * whose object is gone, found by {@link dev.modelpress.cleanup.OrphanSweeper} and reported or
 * removed.
 */
package dev.modelpress.cleanup;
