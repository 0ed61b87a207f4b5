package dev.modelpress.system;

import java.net.URI;
import java.util.List;
import org.springframework.http.HttpStatus;

/**
 * An error a client can act on, rendered as an RFC 9457 problem document by {@link ProblemHandler}.
 * The {@link Kind} gives the stable {@code type} URI and title; the detail names the field, tensor
 * or array at fault.
 */
public class ApiProblem extends RuntimeException {

  /** Base of every problem {@code type} URI. */
  public static final String TYPE_BASE = "https://modelpress.dev/problems/";

  /** The kinds of problem the API reports; each has a stable type URI. */
  public enum Kind {
    MALFORMED_REQUEST(HttpStatus.BAD_REQUEST, "malformed-request", "Malformed request"),
    INVALID_PARAMETER(HttpStatus.BAD_REQUEST, "invalid-parameter", "Invalid parameter"),
    VALIDATION_FAILED(HttpStatus.UNPROCESSABLE_CONTENT, "validation-failed", "Request failed validation"),
    INVALID_MODEL(HttpStatus.UNPROCESSABLE_CONTENT, "invalid-model", "The model file is invalid"),
    INVALID_DATASET(HttpStatus.UNPROCESSABLE_CONTENT, "invalid-dataset", "The dataset file is invalid"),
    UNSUPPORTED_FORMAT(HttpStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported-format", "Unsupported file format"),
    UNSUPPORTED_MEDIA_TYPE(HttpStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type"),
    PAYLOAD_TOO_LARGE(HttpStatus.CONTENT_TOO_LARGE, "payload-too-large", "Upload too large"),
    NOT_FOUND(HttpStatus.NOT_FOUND, "not-found", "Not found"),
    METHOD_NOT_ALLOWED(HttpStatus.METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed"),
    NOT_ACCEPTABLE(HttpStatus.NOT_ACCEPTABLE, "not-acceptable", "Not acceptable"),
    IN_USE(HttpStatus.CONFLICT, "in-use", "Resource in use"),
    IDEMPOTENCY_CONFLICT(HttpStatus.CONFLICT, "idempotency-key-reused", "Idempotency-Key reused with a different request"),
    JOB_NOT_CANCELLABLE(HttpStatus.CONFLICT, "job-not-cancellable", "Job already finished"),
    NO_REPORT(HttpStatus.CONFLICT, "no-report", "The job has no report"),
    RANGE_NOT_SATISFIABLE(HttpStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "range-not-satisfiable", "Range not satisfiable"),
    NOT_IMPLEMENTED(HttpStatus.NOT_IMPLEMENTED, "not-implemented", "Not implemented yet"),
    STORAGE_UNAVAILABLE(HttpStatus.SERVICE_UNAVAILABLE, "storage-unavailable", "Object storage unavailable"),
    INTERNAL(HttpStatus.INTERNAL_SERVER_ERROR, "internal-error", "Internal error"),
    // Tenancy, authentication and quotas.
    UNAUTHORIZED(HttpStatus.UNAUTHORIZED, "unauthorized", "Authentication required"),
    FORBIDDEN(HttpStatus.FORBIDDEN, "forbidden", "Not allowed for this credential"),
    ALREADY_EXISTS(HttpStatus.CONFLICT, "already-exists", "Already exists"),
    QUOTA_EXCEEDED(HttpStatus.CONTENT_TOO_LARGE, "quota-exceeded", "Storage quota exceeded"),
    RATE_LIMITED(HttpStatus.TOO_MANY_REQUESTS, "rate-limited", "Too many requests"),
    // Job failures (reported inside a job, not as an HTTP response).
    JOB_FAILED(HttpStatus.UNPROCESSABLE_CONTENT, "job-failed", "The job failed"),
    JOB_ATTEMPTS_EXHAUSTED(HttpStatus.INTERNAL_SERVER_ERROR, "attempts-exhausted", "The job's workers kept dying");

    private final HttpStatus status;
    private final String slug;
    private final String title;

    Kind(HttpStatus status, String slug, String title) {
      this.status = status;
      this.slug = slug;
      this.title = title;
    }

    public HttpStatus status() {
      return status;
    }

    public URI type() {
      return URI.create(TYPE_BASE + slug);
    }

    public String title() {
      return title;
    }
  }

  /** One invalid field. */
  public record FieldError(String field, String message) {}

  private final Kind kind;
  private final List<FieldError> errors;
  private final java.util.Map<String, Object> properties = new java.util.LinkedHashMap<>();

  public ApiProblem(Kind kind, String detail) {
    this(kind, detail, List.of());
  }

  public ApiProblem(Kind kind, String detail, List<FieldError> errors) {
    super(detail);
    this.kind = kind;
    this.errors = List.copyOf(errors);
  }

  public Kind kind() {
    return kind;
  }

  public List<FieldError> errors() {
    return errors;
  }

  /** Adds an extension member to the problem document (e.g. {@code limit} of a quota). */
  public ApiProblem with(String name, Object value) {
    properties.put(name, value);
    return this;
  }

  /** Extension members of the problem document. */
  public java.util.Map<String, Object> properties() {
    return java.util.Collections.unmodifiableMap(properties);
  }

  public static ApiProblem notFound(String what, Object id) {
    return new ApiProblem(Kind.NOT_FOUND, what + " " + id + " does not exist");
  }
}
