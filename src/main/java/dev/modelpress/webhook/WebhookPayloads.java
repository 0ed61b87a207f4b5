package dev.modelpress.webhook;

import dev.modelpress.job.ArtifactEntity;
import dev.modelpress.job.JobEntity;
import dev.modelpress.job.JobService;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.springframework.stereotype.Component;
import tools.jackson.databind.json.JsonMapper;

/**
 * The JSON body of a job's webhook, in the Standard Webhooks envelope {@code {type, timestamp,
 * data}}: the job's id, state, attempts, times, report summary or error, and links to its
 * artifacts with their sizes and SHA-256. Built from the ended job, which no longer changes.
 */
@Component
class WebhookPayloads {

  private final JobService jobs;
  private final JsonMapper json;
  private final String base;

  WebhookPayloads(JobService jobs, JsonMapper json, WebhookProperties props) {
    this.jobs = jobs;
    this.json = json;
    String url = props.publicBaseUrl() == null ? "" : props.publicBaseUrl().strip();
    this.base = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
  }

  String build(UUID jobId, String eventType) {
    JobEntity job = jobs.find(jobId).orElseThrow(() -> new IllegalStateException("job " + jobId + " is gone"));
    String href = base + "/v1/jobs/" + job.getId();
    Map<String, Object> data = new LinkedHashMap<>();
    data.put("id", job.getId());
    data.put("state", job.getState().name());
    data.put("modelId", job.getModelId());
    data.put("attempts", job.getAttempts());
    data.put("createdAt", job.getCreatedAt());
    data.put("startedAt", job.getStartedAt());
    data.put("finishedAt", job.getFinishedAt());
    data.put("href", href);
    if (job.getReportSummary() != null) {
      data.put("report", json.readTree(job.getReportSummary()));
    }
    if (job.getError() != null) {
      data.put("error", json.readTree(job.getError()));
    }
    List<Map<String, Object>> artifacts = jobs.artifacts(job.getId()).stream().map(a -> artifact(a, href)).toList();
    data.put("artifacts", artifacts);
    Map<String, Object> envelope = new LinkedHashMap<>();
    envelope.put("type", eventType);
    envelope.put("timestamp", job.getFinishedAt() == null ? job.getUpdatedAt() : job.getFinishedAt());
    envelope.put("data", data);
    return json.writeValueAsString(envelope);
  }

  private static Map<String, Object> artifact(ArtifactEntity a, String jobHref) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", a.getName());
    m.put("bytes", a.getBytes());
    m.put("sha256", a.getSha256());
    m.put("contentType", a.getContentType());
    m.put("href", jobHref + "/artifacts/" + a.getName());
    return m;
  }
}
