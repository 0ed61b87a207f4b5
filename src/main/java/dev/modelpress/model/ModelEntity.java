package dev.modelpress.model;

import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.Id;
import jakarta.persistence.Table;
import java.time.Instant;
import java.util.UUID;
import org.hibernate.annotations.JdbcTypeCode;
import org.hibernate.type.SqlTypes;

/** A stored model. The JSON columns hold the parsed summary and tensor catalogue. */
@Entity
@Table(name = "models")
public class ModelEntity {

  @Id private UUID id;
  @Column(nullable = false) private String owner;
  @Column(nullable = false) private String name;
  @Column(nullable = false) private String format;
  @Column(name = "storage_key", nullable = false) private String storageKey;
  @Column(nullable = false) private String sha256;
  @Column(nullable = false) private long bytes;
  @Column(name = "parameter_count", nullable = false) private long parameterCount;
  @Column(name = "tensor_count", nullable = false) private int tensorCount;

  @JdbcTypeCode(SqlTypes.JSON)
  @Column(nullable = false)
  private String summary;

  @JdbcTypeCode(SqlTypes.JSON)
  @Column(nullable = false)
  private String tensors;

  @Column(name = "created_at", nullable = false) private Instant createdAt;

  protected ModelEntity() {}

  ModelEntity(UUID id, String owner, String name, String format, String storageKey, String sha256, long bytes,
      long parameterCount, int tensorCount, String summary, String tensors, Instant createdAt) {
    this.id = id;
    this.owner = owner;
    this.name = name;
    this.format = format;
    this.storageKey = storageKey;
    this.sha256 = sha256;
    this.bytes = bytes;
    this.parameterCount = parameterCount;
    this.tensorCount = tensorCount;
    this.summary = summary;
    this.tensors = tensors;
    this.createdAt = createdAt;
  }

  public UUID getId() { return id; }
  public String getOwner() { return owner; }
  public String getName() { return name; }
  public String getFormat() { return format; }
  public String getStorageKey() { return storageKey; }
  public String getSha256() { return sha256; }
  public long getBytes() { return bytes; }
  public long getParameterCount() { return parameterCount; }
  public int getTensorCount() { return tensorCount; }
  public String getSummary() { return summary; }
  public String getTensors() { return tensors; }
  public Instant getCreatedAt() { return createdAt; }
}
