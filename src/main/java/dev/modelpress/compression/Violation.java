package dev.modelpress.compression;

/**
 * A problem with a job's steps found before queueing.
 *
 * @param field path of the offending field, e.g. {@code steps[1].sparsity}, {@code steps[0].include[2]}
 * @param message what is wrong, in words a client can act on
 */
public record Violation(String field, String message) {}
