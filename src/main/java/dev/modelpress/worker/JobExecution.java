package dev.modelpress.worker;

import dev.modelpress.compression.CompressionCancelledException;
import dev.modelpress.job.JobQueue;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The worker-side state of one running job: why it should stop (cancel, lost lease, shutdown)
 * and the latest progress, which the heartbeat saves.
 */
final class JobExecution {

  /** Why a job stopped early. */
  enum StopReason { CANCELLED, LEASE_LOST, SHUTDOWN }

  final JobQueue.Claim claim;
  private volatile StopReason stop;
  private final AtomicReference<String> pendingProgress = new AtomicReference<>();
  private volatile String lastProgress;

  JobExecution(JobQueue.Claim claim) {
    this.claim = claim;
  }

  void requestStop(StopReason reason) {
    if (stop == null || reason == StopReason.LEASE_LOST) {
      stop = reason;
    }
  }

  StopReason stopReason() {
    return stop;
  }

  /** Throws if the job should stop: called between tensors and steps. */
  void checkpoint() {
    StopReason reason = stop;
    if (reason != null) {
      throw new CompressionCancelledException("job " + claim.jobId() + " stopping: " + reason);
    }
  }

  void progress(String json) {
    pendingProgress.set(json);
    lastProgress = json;
  }

  /** Progress not yet saved, or null. */
  String takeProgress() {
    return pendingProgress.getAndSet(null);
  }

  String lastProgress() {
    return lastProgress;
  }

  // --- step timing for metrics (called from the worker thread only) ---

  /** How long one completed step took. */
  record StepTime(String type, long nanos) {}

  private final List<StepTime> stepTimes = new ArrayList<>();
  private int stepIndex = -1;
  private String stepType;
  private long stepStarted;

  /** The job is in step {@code index} of type {@code type}; entering a new one completes the last. */
  void step(int index, String type) {
    if (index == stepIndex && type.equals(stepType)) {
      return;
    }
    endStep();
    stepIndex = index;
    stepType = type;
    stepStarted = System.nanoTime();
  }

  /** The current step completed (a step cut short by a stop is never recorded). */
  void endStep() {
    if (stepType != null) {
      stepTimes.add(new StepTime(stepType, System.nanoTime() - stepStarted));
      stepType = null;
      stepIndex = -1;
    }
  }

  List<StepTime> stepTimes() {
    return List.copyOf(stepTimes);
  }
}
