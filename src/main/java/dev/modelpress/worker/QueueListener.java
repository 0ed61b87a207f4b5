package dev.modelpress.worker;

import dev.modelpress.job.JobQueue;
import dev.modelpress.system.PgNotifications;
import java.util.UUID;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.stereotype.Component;

/**
 * Subscribes the workers to queued jobs and cancellation requests on the process's {@link
 * PgNotifications} connection, so idle workers start a job within milliseconds of its commit and
 * running jobs stop promptly. After each (re)connect (database restart) the workers are woken once,
 * for jobs queued while nobody listened; meanwhile their poll interval keeps things moving.
 */
@Component
@ConditionalOnProperty(prefix = "modelpress.worker", name = "enabled", havingValue = "true", matchIfMissing = true)
class QueueListener {

  QueueListener(PgNotifications notifications, JobWorkers workers) {
    // A null payload means "(re)connected": look at the queue.
    notifications.subscribe(JobQueue.QUEUED_CHANNEL, payload -> workers.wake());
    notifications.subscribe(JobQueue.CANCEL_CHANNEL, payload -> {
      if (payload == null) {
        return;
      }
      try {
        workers.cancel(UUID.fromString(payload));
      } catch (IllegalArgumentException ignored) {
        // Not one of ours.
      }
    });
  }
}
