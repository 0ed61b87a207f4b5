package dev.modelpress.job;

import dev.modelpress.system.ApiProblem;
import java.util.UUID;
import org.springframework.http.CacheControl;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.servlet.mvc.method.annotation.SseEmitter;

/**
 * {@code GET /v1/jobs/{jobId}/events}: the job's progress and state changes as Server-Sent Events
 * (documented in openapi.yaml; hand-written because the generated interface cannot return an
 * emitter).
 */
@RestController
class JobEventsController {

  private final JobService service;
  private final JobEventStreams streams;

  JobEventsController(JobService service, JobEventStreams streams) {
    this.service = service;
    this.streams = streams;
  }

  @GetMapping("/v1/jobs/{jobId}/events")
  ResponseEntity<SseEmitter> streamJobEvents(@PathVariable UUID jobId,
      @RequestHeader(name = "Last-Event-ID", required = false) String lastEventId) {
    service.get(jobId); // 404 for unknown jobs and other owners' jobs, before the stream starts
    long after = -1;
    if (lastEventId != null && !lastEventId.isBlank()) {
      try {
        after = Long.parseLong(lastEventId.strip());
      } catch (NumberFormatException e) {
        throw new ApiProblem(ApiProblem.Kind.INVALID_PARAMETER,
            "Last-Event-ID must be an event id this stream sent (a number), not '" + lastEventId + "'");
      }
    }
    return ResponseEntity.ok()
        .cacheControl(CacheControl.noStore())
        .header("X-Accel-Buffering", "no") // nginx and similar proxies: pass events through at once
        .body(streams.open(jobId, after));
  }
}
