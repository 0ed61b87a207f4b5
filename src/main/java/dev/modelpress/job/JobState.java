package dev.modelpress.job;

/** QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED; an expired lease puts RUNNING back in play. */
public enum JobState {
  QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED;

  public boolean terminal() {
    return this == SUCCEEDED || this == FAILED || this == CANCELLED;
  }
}
