package dev.modelpress.model;

import dev.modelpress.api.ModelsApi;
import dev.modelpress.api.dto.GraphValue;
import dev.modelpress.api.dto.Model;
import dev.modelpress.api.dto.ModelFormat;
import dev.modelpress.api.dto.ModelPage;
import dev.modelpress.api.dto.Tensor;
import dev.modelpress.format.ValueInfo;
import dev.modelpress.system.UploadSpool;
import dev.modelpress.system.Uploads;
import jakarta.servlet.http.HttpServletRequest;
import java.io.IOException;
import java.net.URI;
import java.time.ZoneOffset;
import java.util.List;
import java.util.UUID;
import org.springframework.data.domain.Page;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RequestPart;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.multipart.MultipartFile;

/**
 * The models API. Upload is hand-written (not from the generated interface) so the body streams
 * to disk instead of being buffered in the heap.
 */
@RestController
class ModelController implements ModelsApi {

  private final ModelService service;
  private final UploadSpool spool;

  ModelController(ModelService service, UploadSpool spool) {
    this.service = service;
    this.spool = spool;
  }

  @PostMapping(path = "/v1/models", consumes = {MediaType.APPLICATION_OCTET_STREAM_VALUE,
      "application/zip", "application/x-tar"}, produces = MediaType.APPLICATION_JSON_VALUE)
  ResponseEntity<Model> uploadRaw(@RequestParam(required = false) String name,
      @RequestParam(required = false) String format, HttpServletRequest request) throws IOException {
    try (UploadSpool.Spooled upload = Uploads.spoolRaw(spool, request)) {
      return created(service.create(upload, name, format, null));
    }
  }

  @PostMapping(path = "/v1/models", consumes = MediaType.MULTIPART_FORM_DATA_VALUE,
      produces = MediaType.APPLICATION_JSON_VALUE)
  ResponseEntity<Model> uploadMultipart(@RequestPart("file") MultipartFile file,
      @RequestParam(required = false) String name, @RequestParam(required = false) String format)
      throws IOException {
    try (UploadSpool.Spooled upload = Uploads.spoolPart(spool, file)) {
      return created(service.create(upload, name, format,
          file.getOriginalFilename()));
    }
  }

  @Override
  public ResponseEntity<Model> getModel(UUID modelId) {
    return ResponseEntity.ok(toDto(service.get(modelId)));
  }

  @Override
  public ResponseEntity<ModelPage> listModels(Integer page, Integer size) {
    Page<ModelEntity> result = service.list(page, size);
    return ResponseEntity.ok(new ModelPage(result.map(this::toDto).getContent(), page, size, result.getTotalElements()));
  }

  @Override
  public ResponseEntity<List<Tensor>> listModelTensors(UUID modelId) {
    return ResponseEntity.ok(service.tensors(service.get(modelId)).stream()
        .map(t -> new Tensor(t.name(), t.dtype(), t.shape(), t.consumers()).location(t.location()))
        .toList());
  }

  @Override
  public ResponseEntity<Void> deleteModel(UUID modelId) {
    service.delete(modelId);
    return ResponseEntity.noContent().build();
  }

  private ResponseEntity<Model> created(ModelEntity model) {
    return ResponseEntity.created(URI.create("/v1/models/" + model.getId())).body(toDto(model));
  }

  private Model toDto(ModelEntity m) {
    ModelService.StoredSummary s = service.summary(m);
    return new Model(m.getId(), m.getName(), ModelFormat.fromValue(m.getFormat()), m.getSha256(), m.getBytes(),
        m.getParameterCount(), m.getTensorCount(), graphValues(s.inputs()), graphValues(s.outputs()), s.opsets(),
        m.getCreatedAt().atOffset(ZoneOffset.UTC))
        .irVersion(s.irVersion() == 0 ? null : s.irVersion())
        .producer(s.producer());
  }

  private static List<GraphValue> graphValues(List<ValueInfo> values) {
    return values.stream().map(v -> new GraphValue(v.name(), v.elementType(), v.shape())).toList();
  }
}
