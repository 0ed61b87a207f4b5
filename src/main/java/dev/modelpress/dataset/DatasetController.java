package dev.modelpress.dataset;

import dev.modelpress.api.DatasetsApi;
import dev.modelpress.api.dto.Dataset;
import dev.modelpress.api.dto.DatasetArray;
import dev.modelpress.api.dto.DatasetPage;
import dev.modelpress.system.UploadSpool;
import dev.modelpress.system.Uploads;
import jakarta.servlet.http.HttpServletRequest;
import java.io.IOException;
import java.net.URI;
import java.time.ZoneOffset;
import java.util.UUID;
import org.springframework.data.domain.Page;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RequestPart;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.multipart.MultipartFile;

/** The datasets API; upload streams the body to disk (hand-written for that reason). */
@RestController
class DatasetController implements DatasetsApi {

  private final DatasetService service;
  private final UploadSpool spool;

  DatasetController(DatasetService service, UploadSpool spool) {
    this.service = service;
    this.spool = spool;
  }

  @PostMapping(path = "/v1/datasets", consumes = MediaType.APPLICATION_OCTET_STREAM_VALUE,
      produces = MediaType.APPLICATION_JSON_VALUE)
  ResponseEntity<Dataset> uploadRaw(@RequestParam(required = false) String name, HttpServletRequest request)
      throws IOException {
    try (UploadSpool.Spooled upload = Uploads.spoolRaw(spool, request)) {
      return created(service.create(upload, name, null));
    }
  }

  @PostMapping(path = "/v1/datasets", consumes = MediaType.MULTIPART_FORM_DATA_VALUE,
      produces = MediaType.APPLICATION_JSON_VALUE)
  ResponseEntity<Dataset> uploadMultipart(@RequestPart("file") MultipartFile file,
      @RequestParam(required = false) String name) throws IOException {
    try (UploadSpool.Spooled upload = Uploads.spoolPart(spool, file)) {
      return created(service.create(upload, name, file.getOriginalFilename()));
    }
  }

  @Override
  public ResponseEntity<Dataset> getDataset(UUID datasetId) {
    return ResponseEntity.ok(toDto(service.get(datasetId)));
  }

  @Override
  public ResponseEntity<DatasetPage> listDatasets(Integer page, Integer size) {
    Page<DatasetEntity> result = service.list(page, size);
    return ResponseEntity.ok(new DatasetPage(result.map(this::toDto).getContent(), page, size, result.getTotalElements()));
  }

  @Override
  public ResponseEntity<Void> deleteDataset(UUID datasetId) {
    service.delete(datasetId);
    return ResponseEntity.noContent().build();
  }

  private ResponseEntity<Dataset> created(DatasetEntity dataset) {
    return ResponseEntity.created(URI.create("/v1/datasets/" + dataset.getId())).body(toDto(dataset));
  }

  private Dataset toDto(DatasetEntity d) {
    return new Dataset(d.getId(), d.getName(), d.getSha256(), d.getBytes(), d.getSamples(), d.isHasLabels(),
        service.arrays(d).stream().map(a -> new DatasetArray(a.name(), a.dtype(), a.shape())).toList(),
        d.getCreatedAt().atOffset(ZoneOffset.UTC));
  }
}
