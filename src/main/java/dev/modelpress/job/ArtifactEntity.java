package dev.modelpress.job;

import jakarta.persistence.Column;
import jakarta.persistence.Embeddable;
import jakarta.persistence.EmbeddedId;
import jakarta.persistence.Entity;
import jakarta.persistence.Table;
import java.io.Serializable;
import java.time.Instant;
import java.util.UUID;

/** A stored result of a job; rows are written in the same transaction that marks the job done. */
@Entity
@Table(name = "artifacts")
public class ArtifactEntity {

  /** Primary key: (job, name). */
  @Embeddable
  public record Key(@Column(name = "job_id") UUID jobId, @Column(name = "name") String name) implements Serializable {}

  @EmbeddedId private Key key;
  @Column(name = "storage_key", nullable = false) private String storageKey;
  @Column(name = "content_type", nullable = false) private String contentType;
  @Column(nullable = false) private long bytes;
  @Column(nullable = false) private String sha256;
  @Column(name = "created_at", nullable = false) private Instant createdAt;

  protected ArtifactEntity() {}

  public UUID getJobId() { return key.jobId(); }
  public String getName() { return key.name(); }
  public String getStorageKey() { return storageKey; }
  public String getContentType() { return contentType; }
  public long getBytes() { return bytes; }
  public String getSha256() { return sha256; }
  public Instant getCreatedAt() { return createdAt; }
}
