package dev.modelpress.model;

import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.ValueInfo;
import dev.modelpress.format.archive.ArchiveReader;
import dev.modelpress.format.onnx.OnnxArchive;
import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.system.ApiProblem;
import dev.modelpress.system.Owners;
import dev.modelpress.system.UploadSpool;
import dev.modelpress.tenant.StorageQuota;
import dev.modelpress.system.Uploads;
import java.io.IOException;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.data.domain.Page;
import org.springframework.data.domain.PageRequest;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Service;
import org.springframework.transaction.support.TransactionTemplate;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.json.JsonMapper;

/**
 * Model lifecycle. Bytes move (spool, validate, store) before any transaction opens; the row is
 * written last, so a failure at any point leaves neither a row nor an object behind.
 */
@Service
public class ModelService {

  private static final Logger log = LoggerFactory.getLogger(ModelService.class);

  /** The parts of a {@link ModelSummary} kept in the {@code summary} column. */
  public record StoredSummary(List<ValueInfo> inputs, List<ValueInfo> outputs, Map<String, Long> opsets,
      long irVersion, String producer, Map<String, String> metadata) {}

  private final ModelRepository models;
  private final ArtifactStore store;
  private final JsonMapper json;
  private final Clock clock;
  private final TransactionTemplate tx;
  private final JdbcClient jdbc;
  private final StorageQuota quota;
  /** Caps on sharded-checkpoint archives, set from configuration below. */
  private ArchiveReader.Limits archiveLimits =
      dev.modelpress.format.safetensors.SafetensorsShards.DEFAULT_LIMITS;
  private final UploadSpool spool;

  ModelService(ModelRepository models, ArtifactStore store, JsonMapper json, Clock clock,
      TransactionTemplate tx, JdbcClient jdbc, StorageQuota quota, UploadSpool spool) {
    this.spool = spool;
    this.models = models;
    this.store = store;
    this.json = json;
    this.clock = clock;
    this.tx = tx;
    this.jdbc = jdbc;
    this.quota = quota;
  }

  /** Validates a spooled upload, stores it and records it. */
  public ModelEntity create(UploadSpool.Spooled upload, String name, String declaredFormat, String fileName)
      throws IOException {
    if (upload.size() == 0) {
      throw new ApiProblem(ApiProblem.Kind.MALFORMED_REQUEST, "the uploaded file is empty");
    }
    String owner = Owners.current();
    quota.check(owner, upload.size());
    // holds an .onnx file, else a sharded safetensors checkpoint (index + shards) ----
    ArchiveReader.Kind kind = ArchiveReader.detect(upload.file());
    boolean onnx = kind != null
        && ("onnx".equals(declaredFormat) || declaredFormat == null && ArchiveRouting.holdsOnnx(upload.file()));
    ArchiveReader.Kind archive = onnx ? kind : null;
    ArchiveReader.Kind stArchive = onnx || "onnx".equals(declaredFormat) ? null : kind;
    ModelSummary summary = archive != null ? ModelArchives.inspect(upload.file(), spool.dir(), limits())
        : stArchive != null ? SafetensorsShardUpload.inspect(upload.file(), archiveLimits)
        : ModelInspector.inspect(upload.file(), declaredFormat, fileName);
    UUID id = UUID.randomUUID();
    // Archives are stored as uploaded (model.onnx.zip, model.safetensors.tar, ...); workers unpack them again.
    String key = "models/" + id + "/model." + summary.format()
        + (archive != null ? "." + archive.extension() : stArchive != null ? "." + stArchive.extension() : "");
    return quota.storeAndRecord(owner, key, upload.file(), stored -> models.save(new ModelEntity(id, owner,
        Uploads.displayName(name, fileName, id + "." + summary.format()), summary.format(), key, stored.sha256(),
        stored.size(), summary.parameterCount(), summary.tensors().size(),
        json.writeValueAsString(new StoredSummary(summary.inputs(), summary.outputs(), summary.opsets(),
            summary.irVersion(), summary.producer(), summary.metadata())),
        json.writeValueAsString(summary.tensors()), clock.instant())));
  }

  @org.springframework.beans.factory.annotation.Value("${modelpress.models.archive-max-entries:10000}")
  void archiveMaxEntries(int entries) {
    archiveLimits = ArchiveReader.Limits.of(entries, archiveLimits.maxBytes());
  }

  @org.springframework.beans.factory.annotation.Value("${modelpress.models.archive-max-bytes:1TB}")
  void archiveMaxBytes(org.springframework.util.unit.DataSize bytes) {
    archiveLimits = ArchiveReader.Limits.of(archiveLimits.maxEntries(), bytes.toBytes());
  }

  /** What an archive may unpack to: the upload limit (at most 100× the archive's own size). */
  public ArchiveReader.Limits limits() {
    return OnnxArchive.limits(spool.maxBytes());
  }

  /** Whether the model was uploaded as an archive of an ONNX file plus its external data files. */
  public static boolean isArchive(ModelEntity model) {
    String key = model.getStorageKey();
    return key.endsWith(".onnx.zip") || key.endsWith(".onnx.tar");
  }

  public ModelEntity get(UUID id) {
    return models.findByIdAndOwner(id, Owners.current()).orElseThrow(() -> ApiProblem.notFound("model", id));
  }

  /** A model by id whoever owns it: for workers, which act for the job's owner. */
  public java.util.Optional<ModelEntity> find(UUID id) {
    return models.findById(id);
  }

  /** A model by id if {@code owner} owns it: for workers acting for a job's owner. */
  public java.util.Optional<ModelEntity> find(UUID id, String owner) {
    return models.findByIdAndOwner(id, owner);
  }

  /** The model's file on local disk: the stored file itself, or a copy made in {@code workDir}. */
  public java.nio.file.Path localCopy(ModelEntity model, java.nio.file.Path workDir) throws IOException {
    java.util.Optional<java.nio.file.Path> local = store.localFile(model.getStorageKey());
    if (local.isPresent()) {
      return local.get();
    }
    java.nio.file.Path file = workDir.resolve("original." + model.getFormat());
    try (java.io.InputStream in = store.open(model.getStorageKey())) {
      java.nio.file.Files.copy(in, file);
    }
    return file;
  }

  public Page<ModelEntity> list(int page, int size) {
    return models.findByOwnerOrderByCreatedAtDesc(Owners.current(), PageRequest.of(page, size));
  }

  public StoredSummary summary(ModelEntity model) {
    return json.readValue(model.getSummary(), StoredSummary.class);
  }

  public List<TensorInfo> tensors(ModelEntity model) {
    return json.readValue(model.getTensors(), new TypeReference<List<TensorInfo>>() {});
  }

  /** The full summary, rebuilt from the stored columns. */
  public ModelSummary fullSummary(ModelEntity model) {
    StoredSummary s = summary(model);
    return new ModelSummary(model.getFormat(), model.getParameterCount(), tensors(model), s.inputs(), s.outputs(),
        s.opsets(), s.irVersion(), s.producer(), s.metadata());
  }

  /** Deletes the row, then the object; refused while a queued or running job needs the model. */
  public void delete(UUID id) {
    ModelEntity model = get(id);
    tx.executeWithoutResult(status -> {
      boolean inUse = jdbc.sql("select exists(select 1 from jobs where model_id = ? and state in ('QUEUED', 'RUNNING'))")
          .param(id).query(Boolean.class).single();
      if (inUse) {
        throw new ApiProblem(ApiProblem.Kind.IN_USE, "model " + id + " is used by a queued or running job");
      }
      models.deleteById(id);
    });
    try {
      store.delete(model.getStorageKey());
    } catch (RuntimeException e) {
      log.warn("Model {} deleted but its object {} could not be removed: {}", id, model.getStorageKey(), e.toString());
    }
  }
}
