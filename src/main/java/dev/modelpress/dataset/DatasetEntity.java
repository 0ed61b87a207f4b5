package dev.modelpress.dataset;

import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.Id;
import jakarta.persistence.Table;
import java.time.Instant;
import java.util.UUID;
import org.hibernate.annotations.JdbcTypeCode;
import org.hibernate.type.SqlTypes;

/** A stored dataset; {@code arrays} is the JSON list of its arrays' names, dtypes and shapes. */
@Entity
@Table(name = "datasets")
public class DatasetEntity {

  @Id private UUID id;
  @Column(nullable = false) private String owner;
  @Column(nullable = false) private String name;
  @Column(name = "storage_key", nullable = false) private String storageKey;
  @Column(nullable = false) private String sha256;
  @Column(nullable = false) private long bytes;
  @Column(nullable = false) private long samples;
  @Column(name = "has_labels", nullable = false) private boolean hasLabels;

  @JdbcTypeCode(SqlTypes.JSON)
  @Column(nullable = false)
  private String arrays;

  @Column(name = "created_at", nullable = false) private Instant createdAt;

  protected DatasetEntity() {}

  DatasetEntity(UUID id, String owner, String name, String storageKey, String sha256, long bytes, long samples,
      boolean hasLabels, String arrays, Instant createdAt) {
    this.id = id;
    this.owner = owner;
    this.name = name;
    this.storageKey = storageKey;
    this.sha256 = sha256;
    this.bytes = bytes;
    this.samples = samples;
    this.hasLabels = hasLabels;
    this.arrays = arrays;
    this.createdAt = createdAt;
  }

  public UUID getId() { return id; }
  public String getOwner() { return owner; }
  public String getName() { return name; }
  public String getStorageKey() { return storageKey; }
  public String getSha256() { return sha256; }
  public long getBytes() { return bytes; }
  public long getSamples() { return samples; }
  public boolean isHasLabels() { return hasLabels; }
  public String getArrays() { return arrays; }
  public Instant getCreatedAt() { return createdAt; }
}
