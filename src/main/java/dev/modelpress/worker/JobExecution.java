package dev.modelpress.worker;

import dev.modelpress.compression.CompressionCancelledException;
import dev.modelpress.job.JobQueue;
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
}
