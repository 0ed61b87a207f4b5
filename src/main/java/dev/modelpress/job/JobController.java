package dev.modelpress.job;

import dev.modelpress.api.JobsApi;
import dev.modelpress.api.dto.Artifact;
import dev.modelpress.api.dto.Job;
import dev.modelpress.api.dto.JobPage;
import dev.modelpress.api.dto.JobProgress;
import dev.modelpress.api.dto.JobRequest;
import dev.modelpress.api.dto.Problem;
import dev.modelpress.api.dto.ReportSummary;
import java.net.URI;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.UUID;
import org.springframework.data.domain.Page;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.RestController;
import tools.jackson.databind.json.JsonMapper;

/** The jobs API. */
@RestController
class JobController implements JobsApi {

  private final JobService service;
  private final JsonMapper json;

  JobController(JobService service, JsonMapper json) {
    this.service = service;
    this.json = json;
  }

  @Override
  public ResponseEntity<Job> submitJob(JobRequest jobRequest, String idempotencyKey) {
    JobService.Submitted submitted = service.submit(jobRequest, idempotencyKey);
    return ResponseEntity.status(submitted.replayed() ? HttpStatus.OK : HttpStatus.ACCEPTED)
        .location(URI.create("/v1/jobs/" + submitted.job().getId()))
        .body(toDto(submitted.job()));
  }

  @Override
  public ResponseEntity<Job> getJob(UUID jobId) {
    return ResponseEntity.ok(toDto(service.get(jobId)));
  }

  @Override
  public ResponseEntity<JobPage> listJobs(dev.modelpress.api.dto.JobState state, UUID modelId, Integer page,
      Integer size) {
    Page<JobEntity> result = service.list(state == null ? null : JobState.valueOf(state.getValue()), modelId, page, size);
    return ResponseEntity.ok(new JobPage(result.map(this::toDto).getContent(), page, size, result.getTotalElements()));
  }

  @Override
  public ResponseEntity<Job> cancelJob(UUID jobId) {
    return ResponseEntity.accepted().body(toDto(service.cancel(jobId)));
  }

  Job toDto(JobEntity j) {
    JobService.StoredSpec spec = service.spec(j);
    Job dto = new Job(j.getId(), dev.modelpress.api.dto.JobState.fromValue(j.getState().name()), j.getModelId(),
        spec.steps(), j.getAttempts(), j.getMaxAttempts(), time(j.getCreatedAt()),
        service.artifacts(j.getId()).stream()
            .map(a -> new Artifact(a.getName(), a.getBytes(), a.getSha256(), a.getContentType(),
                "/v1/jobs/" + j.getId() + "/artifacts/" + a.getName()))
            .toList());
    dto.setCalibrationDatasetId(j.getCalibrationDatasetId());
    dto.setTrainingDatasetId(j.getTrainingDatasetId());
    dto.setEvaluationDatasetId(j.getEvaluationDatasetId());
    dto.setCancelRequested(j.isCancelRequested());
    dto.setPriority(j.getPriority());
    dto.setStartedAt(time(j.getStartedAt()));
    dto.setFinishedAt(time(j.getFinishedAt()));
    dto.setCallbackUrl(j.getCallbackUrl());
    if (j.getProgress() != null) {
      dto.setProgress(json.readValue(j.getProgress(), JobProgress.class));
    }
    if (j.getError() != null) {
      dto.setError(json.readValue(j.getError(), Problem.class));
    }
    if (j.getReportSummary() != null) {
      dto.setReport(json.readValue(j.getReportSummary(), ReportSummary.class));
    }
    return dto;
  }

  private static OffsetDateTime time(Instant instant) {
    return instant == null ? null : instant.atOffset(ZoneOffset.UTC);
  }
}
