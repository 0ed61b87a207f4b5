package dev.modelpress.webhook;

import dev.modelpress.api.WebhooksApi;
import dev.modelpress.api.dto.WebhookDeliveries;
import dev.modelpress.api.dto.WebhookDelivery;
import dev.modelpress.job.JobService;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.UUID;
import org.springframework.http.ResponseEntity;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.web.bind.annotation.RestController;

/** {@code GET /v1/jobs/{jobId}/deliveries}: a job's webhook and its delivery attempts. */
@RestController
class WebhookController implements WebhooksApi {

  private final JobService jobs;
  private final JdbcClient jdbc;

  WebhookController(JobService jobs, JdbcClient jdbc) {
    this.jobs = jobs;
    this.jdbc = jdbc;
  }

  @Override
  public ResponseEntity<WebhookDeliveries> listJobDeliveries(UUID jobId) {
    jobs.get(jobId); // 404 for unknown jobs and other owners' jobs
    List<WebhookDelivery> attempts = jdbc.sql("""
            select attempt, attempted_at, status_code, error, duration_ms
              from webhook_deliveries where job_id = ? order by id""")
        .param(jobId)
        .query((rs, i) -> {
          Integer status = (Integer) rs.getObject(3);
          String error = rs.getString(4);
          WebhookDelivery.OutcomeEnum outcome = error == null ? WebhookDelivery.OutcomeEnum.SUCCESS
              : status != null ? WebhookDelivery.OutcomeEnum.HTTP_ERROR : WebhookDelivery.OutcomeEnum.NETWORK_ERROR;
          WebhookDelivery d = new WebhookDelivery(rs.getInt(1), rs.getObject(2, OffsetDateTime.class), rs.getLong(5),
              outcome);
          d.setStatusCode(status);
          d.setError(error);
          return d;
        })
        .list();
    WebhookDeliveries result = new WebhookDeliveries(attempts);
    jdbc.sql("""
            select id, event_type, url, state, attempts, next_attempt_at
              from webhook_outbox where job_id = ?""")
        .param(jobId)
        .query((rs, i) -> {
          result.setWebhookId(rs.getObject(1, UUID.class));
          result.setEventType(rs.getString(2));
          result.setUrl(rs.getString(3));
          result.setState(WebhookDeliveries.StateEnum.fromValue(rs.getString(4)));
          result.setAttempts(rs.getInt(5));
          if ("PENDING".equals(rs.getString(4))) {
            result.setNextAttemptAt(rs.getObject(6, OffsetDateTime.class));
          }
          return result;
        })
        .optional();
    return ResponseEntity.ok(result);
  }
}
