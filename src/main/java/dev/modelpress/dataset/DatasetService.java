package dev.modelpress.dataset;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.npy.DatasetSummary;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzReader;
import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.system.ApiProblem;
import dev.modelpress.system.Owners;
import dev.modelpress.system.UploadSpool;
import dev.modelpress.tenant.StorageQuota;
import dev.modelpress.system.Uploads;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
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

/** Dataset lifecycle: validate the spooled {@code .npz}, store it, record it; load it for jobs. */
@Service
public class DatasetService {

  private static final Logger log = LoggerFactory.getLogger(DatasetService.class);

  private final DatasetRepository datasets;
  private final ArtifactStore store;
  private final JsonMapper json;
  private final Clock clock;
  private final TransactionTemplate tx;
  private final JdbcClient jdbc;
  private final StorageQuota quota;
  private final DatasetProperties props;

  DatasetService(DatasetRepository datasets, ArtifactStore store, JsonMapper json, Clock clock,
      TransactionTemplate tx, JdbcClient jdbc, DatasetProperties props, StorageQuota quota) {
    this.datasets = datasets;
    this.store = store;
    this.json = json;
    this.clock = clock;
    this.tx = tx;
    this.jdbc = jdbc;
    this.quota = quota;
    this.props = props;
  }

  public DatasetEntity create(UploadSpool.Spooled upload, String name, String fileName) throws IOException {
    if (upload.size() == 0) {
      throw new ApiProblem(ApiProblem.Kind.MALFORMED_REQUEST, "the uploaded file is empty");
    }
    String owner = Owners.current();
    quota.check(owner, upload.size());
    DatasetSummary summary;
    try {
      if (!isZip(upload.file())) {
        throw new ApiProblem(ApiProblem.Kind.UNSUPPORTED_FORMAT,
            "datasets must be .npz archives (numpy.savez / savez_compressed); this file is not a zip archive");
      }
      summary = NpzReader.summarize(NpzReader.read(upload.file(), props.maxDecodedBytes().toBytes()));
    } catch (FormatException e) {
      throw new ApiProblem(ApiProblem.Kind.INVALID_DATASET, "npz: " + e.getMessage());
    }
    UUID id = UUID.randomUUID();
    String key = "datasets/" + id + "/data.npz";
    return quota.storeAndRecord(owner, key, upload.file(), stored -> datasets.save(new DatasetEntity(id, owner,
        Uploads.displayName(name, fileName, id + ".npz"), key, stored.sha256(), stored.size(), summary.samples(),
        summary.hasLabels(), json.writeValueAsString(summary.arrays()), clock.instant())));
  }

  public DatasetEntity get(UUID id) {
    return datasets.findByIdAndOwner(id, Owners.current()).orElseThrow(() -> ApiProblem.notFound("dataset", id));
  }

  /** A dataset by id whoever owns it: for workers. */
  public java.util.Optional<DatasetEntity> find(UUID id) {
    return datasets.findById(id);
  }

  /** A dataset by id if {@code owner} owns it: for workers acting for a job's owner. */
  public java.util.Optional<DatasetEntity> find(UUID id, String owner) {
    return datasets.findByIdAndOwner(id, owner);
  }

  public Page<DatasetEntity> list(int page, int size) {
    return datasets.findByOwnerOrderByCreatedAtDesc(Owners.current(), PageRequest.of(page, size));
  }

  public List<DatasetSummary.ArraySummary> arrays(DatasetEntity dataset) {
    return json.readValue(dataset.getArrays(), new TypeReference<List<DatasetSummary.ArraySummary>>() {});
  }

  /** Loads a dataset's arrays for a job, copying it out of storage into {@code workDir} if needed. */
  public List<NdArray> load(DatasetEntity dataset, Path workDir) throws IOException, FormatException {
    Path file = store.localFile(dataset.getStorageKey()).orElse(null);
    if (file == null) {
      file = workDir.resolve("dataset-" + dataset.getId() + ".npz");
      try (InputStream in = store.open(dataset.getStorageKey())) {
        Files.copy(in, file);
      }
    }
    return NpzReader.read(file, props.maxDecodedBytes().toBytes());
  }

  public void delete(UUID id) {
    DatasetEntity dataset = get(id);
    tx.executeWithoutResult(status -> {
      boolean inUse = jdbc.sql("""
          select exists(select 1 from jobs where (calibration_dataset_id = ? or evaluation_dataset_id = ?
                                                  or training_dataset_id = ?)
                        and state in ('QUEUED', 'RUNNING'))""")
          .param(id).param(id).param(id).query(Boolean.class).single();
      if (inUse) {
        throw new ApiProblem(ApiProblem.Kind.IN_USE, "dataset " + id + " is used by a queued or running job");
      }
      datasets.deleteById(id);
    });
    try {
      store.delete(dataset.getStorageKey());
    } catch (RuntimeException e) {
      log.warn("Dataset {} deleted but its object {} could not be removed: {}", id, dataset.getStorageKey(), e.toString());
    }
  }

  private static boolean isZip(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      byte[] magic = in.readNBytes(4);
      return magic.length == 4 && magic[0] == 'P' && magic[1] == 'K';
    }
  }
}
