package dev.modelpress.job;

import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.EnumType;
import jakarta.persistence.Enumerated;
import jakarta.persistence.Id;
import jakarta.persistence.Table;
import java.time.Instant;
import java.util.UUID;
import org.hibernate.annotations.JdbcTypeCode;
import org.hibernate.type.SqlTypes;

/**
 * A job row as the API reads it. State transitions after submission go through {@link JobQueue}'s
 * SQL (claims and leases need {@code SKIP LOCKED} and fencing on the lease owner), never through
 * this entity.
 */
@Entity
@Table(name = "jobs")
public class JobEntity {

  @Id private UUID id;
  @Column(nullable = false) private String owner;
  @Enumerated(EnumType.STRING) @Column(nullable = false) private JobState state;
  @Column(name = "model_id", nullable = false) private UUID modelId;
  @Column(name = "calibration_dataset_id") private UUID calibrationDatasetId;
  @Column(name = "training_dataset_id") private UUID trainingDatasetId;
  @Column(name = "evaluation_dataset_id") private UUID evaluationDatasetId;
  @JdbcTypeCode(SqlTypes.JSON) @Column(nullable = false) private String spec;
  @Column(name = "idempotency_key") private String idempotencyKey;
  @Column(name = "request_hash") private String requestHash;
  @Column(nullable = false) private int attempts;
  @Column(name = "max_attempts", nullable = false) private int maxAttempts;
  @Column(name = "lease_owner") private String leaseOwner;
  @Column(name = "lease_expires_at") private Instant leaseExpiresAt;
  @Column(name = "cancel_requested", nullable = false) private boolean cancelRequested;
  @JdbcTypeCode(SqlTypes.JSON) private String progress;
  @JdbcTypeCode(SqlTypes.JSON) private String error;
  @JdbcTypeCode(SqlTypes.JSON) @Column(name = "report_summary") private String reportSummary;
  @Column(name = "created_at", nullable = false) private Instant createdAt;
  @Column(name = "started_at") private Instant startedAt;
  @Column(name = "finished_at") private Instant finishedAt;
  @Column(name = "updated_at", nullable = false) private Instant updatedAt;
  // live/webhooks: where the terminal webhook goes; event_seq is maintained by a trigger (V2).
  @Column(name = "callback_url") private String callbackUrl;
  @Column(name = "event_seq", insertable = false, updatable = false) private long eventSeq;
  /** Order among the owner's queued jobs (higher first); see {@link JobQueue#claim}. */
  @Column(nullable = false) private int priority;

  protected JobEntity() {}

  JobEntity(UUID id, String owner, UUID modelId, UUID calibrationDatasetId, UUID evaluationDatasetId, String spec,
      String idempotencyKey, String requestHash, int maxAttempts, Instant now) {
    this.id = id;
    this.owner = owner;
    this.state = JobState.QUEUED;
    this.modelId = modelId;
    this.calibrationDatasetId = calibrationDatasetId;
    this.evaluationDatasetId = evaluationDatasetId;
    this.spec = spec;
    this.idempotencyKey = idempotencyKey;
    this.requestHash = requestHash;
    this.maxAttempts = maxAttempts;
    this.createdAt = now;
    this.updatedAt = now;
  }

  public UUID getId() { return id; }
  public String getOwner() { return owner; }
  public JobState getState() { return state; }
  public UUID getModelId() { return modelId; }
  public UUID getCalibrationDatasetId() { return calibrationDatasetId; }
  public UUID getTrainingDatasetId() { return trainingDatasetId; }
  void setTrainingDatasetId(UUID trainingDatasetId) { this.trainingDatasetId = trainingDatasetId; }
  public UUID getEvaluationDatasetId() { return evaluationDatasetId; }
  public String getSpec() { return spec; }
  public String getIdempotencyKey() { return idempotencyKey; }
  public String getRequestHash() { return requestHash; }
  public int getAttempts() { return attempts; }
  public int getMaxAttempts() { return maxAttempts; }
  public String getLeaseOwner() { return leaseOwner; }
  public Instant getLeaseExpiresAt() { return leaseExpiresAt; }
  public boolean isCancelRequested() { return cancelRequested; }
  public String getProgress() { return progress; }
  public String getError() { return error; }
  public String getReportSummary() { return reportSummary; }
  public Instant getCreatedAt() { return createdAt; }
  public Instant getStartedAt() { return startedAt; }
  public Instant getFinishedAt() { return finishedAt; }
  public Instant getUpdatedAt() { return updatedAt; }
  public String getCallbackUrl() { return callbackUrl; }
  /** Counts the changes SSE clients see (state, progress, cancel request); the events' id. */
  public long getEventSeq() { return eventSeq; }

  void setCallbackUrl(String callbackUrl) { this.callbackUrl = callbackUrl; }
  public int getPriority() { return priority; }

  /** Set before the row is first saved. */
  void setPriority(int priority) { this.priority = priority; }
}
