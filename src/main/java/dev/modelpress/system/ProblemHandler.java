package dev.modelpress.system;

import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.MediaType;
import org.springframework.http.ProblemDetail;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.web.HttpMediaTypeNotAcceptableException;
import org.springframework.web.HttpMediaTypeNotSupportedException;
import org.springframework.web.HttpRequestMethodNotSupportedException;
import org.springframework.web.bind.MethodArgumentNotValidException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.context.request.ServletWebRequest;
import org.springframework.web.context.request.WebRequest;
import org.springframework.web.method.annotation.HandlerMethodValidationException;
import org.springframework.web.method.annotation.MethodArgumentTypeMismatchException;
import org.springframework.web.multipart.MaxUploadSizeExceededException;
import org.springframework.web.servlet.mvc.method.annotation.ResponseEntityExceptionHandler;
import org.springframework.web.servlet.resource.NoResourceFoundException;
import tools.jackson.core.exc.StreamReadException;
import tools.jackson.databind.DatabindException;
import tools.jackson.databind.exc.UnrecognizedPropertyException;

/**
 * Renders every error as an RFC 9457 problem document with a stable {@code type} URI. Client
 * errors say which field is at fault; server errors never carry a stack trace or class name, only
 * an id to find the log line.
 */
@RestControllerAdvice
class ProblemHandler extends ResponseEntityExceptionHandler {

  private static final Logger log = LoggerFactory.getLogger(ProblemHandler.class);

  @ExceptionHandler(ApiProblem.class)
  ResponseEntity<ProblemDetail> apiProblem(ApiProblem e, WebRequest request) {
    ProblemDetail problem = Problems.of(e.kind(), e.getMessage(), e.errors());
    e.properties().forEach(problem::setProperty);
    return respond(problem, request);
  }

  @ExceptionHandler(MethodArgumentTypeMismatchException.class)
  ResponseEntity<ProblemDetail> typeMismatch(MethodArgumentTypeMismatchException e, WebRequest request) {
    String detail = "parameter '" + e.getName() + "' has an invalid value '" + e.getValue() + "'";
    HttpStatus status = e.getParameter().hasParameterAnnotation(org.springframework.web.bind.annotation.PathVariable.class)
        ? HttpStatus.NOT_FOUND : HttpStatus.BAD_REQUEST;
    ApiProblem.Kind kind = status == HttpStatus.NOT_FOUND ? ApiProblem.Kind.NOT_FOUND : ApiProblem.Kind.INVALID_PARAMETER;
    return respond(Problems.of(kind, detail, List.of(new ApiProblem.FieldError(e.getName(), "invalid value"))), request);
  }

  @ExceptionHandler(jakarta.validation.ConstraintViolationException.class)
  ResponseEntity<ProblemDetail> constraintViolation(jakarta.validation.ConstraintViolationException e,
      WebRequest request) {
    List<ApiProblem.FieldError> errors = e.getConstraintViolations().stream()
        .map(v -> new ApiProblem.FieldError(lastNode(v.getPropertyPath().toString()), v.getMessage()))
        .toList();
    String detail = errors.isEmpty() ? "invalid parameter" : errors.getFirst().field() + ": " + errors.getFirst().message();
    return respond(Problems.of(ApiProblem.Kind.INVALID_PARAMETER, detail, errors), request);
  }

  private static String lastNode(String path) {
    int dot = path.lastIndexOf('.');
    return dot < 0 ? path : path.substring(dot + 1);
  }

  @ExceptionHandler(Exception.class)
  ResponseEntity<ProblemDetail> unexpected(Exception e, WebRequest request) {
    String incident = UUID.randomUUID().toString();
    log.error("Unhandled error, incident {}", incident, e);
    return respond(Problems.of(ApiProblem.Kind.INTERNAL,
        "An unexpected error occurred; quote incident " + incident + " when reporting it.", List.of()), request);
  }

  @Override
  protected ResponseEntity<Object> handleHttpMessageNotReadable(
      HttpMessageNotReadableException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
    Throwable cause = e.getMostSpecificCause();
    ProblemDetail problem;
    if (cause instanceof DatabindException de && !(cause instanceof StreamReadException)) {
      // Well-formed JSON that does not fit the schema (unknown field, wrong type, bad value).
      String field = de.getPath().isEmpty() ? "$" : JsonPaths.of(de.getPath());
      String message = cause instanceof UnrecognizedPropertyException
          ? "unknown field" : "invalid value: " + firstLine(de.getOriginalMessage());
      problem = Problems.of(ApiProblem.Kind.VALIDATION_FAILED, field + ": " + message,
          List.of(new ApiProblem.FieldError(field, message)));
    } else {
      String reason = cause == null || cause == e ? "the body is missing or not valid JSON" : firstLine(cause.getMessage());
      problem = Problems.of(ApiProblem.Kind.MALFORMED_REQUEST, "request body could not be parsed: " + reason, List.of());
    }
    return cast(respond(problem, request));
  }

  @Override
  protected ResponseEntity<Object> handleMethodArgumentNotValid(
      MethodArgumentNotValidException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
    List<ApiProblem.FieldError> errors = new ArrayList<>();
    e.getBindingResult().getFieldErrors().forEach(f ->
        errors.add(new ApiProblem.FieldError(f.getField(), f.getDefaultMessage())));
    e.getBindingResult().getGlobalErrors().forEach(g ->
        errors.add(new ApiProblem.FieldError(g.getObjectName(), g.getDefaultMessage())));
    return cast(respond(Problems.validation(errors), request));
  }

  @Override
  protected ResponseEntity<Object> handleHandlerMethodValidationException(
      HandlerMethodValidationException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
    List<ApiProblem.FieldError> errors = new ArrayList<>();
    e.getParameterValidationResults().forEach(r -> r.getResolvableErrors().forEach(err ->
        errors.add(new ApiProblem.FieldError(r.getMethodParameter().getParameterName(), err.getDefaultMessage()))));
    ProblemDetail problem = Problems.of(ApiProblem.Kind.INVALID_PARAMETER,
        errors.isEmpty() ? "invalid parameter" : errors.getFirst().field() + ": " + errors.getFirst().message(), errors);
    return cast(respond(problem, request));
  }

  @Override
  protected ResponseEntity<Object> handleMaxUploadSizeExceededException(
      MaxUploadSizeExceededException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
    return cast(respond(Problems.of(ApiProblem.Kind.PAYLOAD_TOO_LARGE,
        "the upload exceeds the configured maximum size", List.of()), request));
  }

  @Override
  protected ResponseEntity<Object> handleHttpMediaTypeNotSupported(
      HttpMediaTypeNotSupportedException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
    return cast(respond(Problems.of(ApiProblem.Kind.UNSUPPORTED_MEDIA_TYPE,
        "content type " + e.getContentType() + " is not supported here; use one of " + e.getSupportedMediaTypes(),
        List.of()), request));
  }

  @Override
  protected ResponseEntity<Object> handleHttpMediaTypeNotAcceptable(
      HttpMediaTypeNotAcceptableException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
    return cast(respond(Problems.of(ApiProblem.Kind.NOT_ACCEPTABLE,
        "cannot produce a response matching the Accept header", List.of()), request));
  }

  @Override
  protected ResponseEntity<Object> handleHttpRequestMethodNotSupported(
      HttpRequestMethodNotSupportedException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
    return cast(respond(Problems.of(ApiProblem.Kind.METHOD_NOT_ALLOWED,
        "method " + e.getMethod() + " is not allowed here", List.of()), request));
  }

  @Override
  protected ResponseEntity<Object> handleNoResourceFoundException(
      NoResourceFoundException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
    return cast(respond(Problems.of(ApiProblem.Kind.NOT_FOUND,
        "no such endpoint: /" + e.getResourcePath(), List.of()), request));
  }

  /** Gives Spring's own problem responses our type URIs too. */
  @Override
  protected ResponseEntity<Object> handleExceptionInternal(
      Exception e, Object body, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
    if (body instanceof ProblemDetail pd && (pd.getType() == null || "about:blank".equals(pd.getType().toString()))) {
      pd.setType(URI.create(ApiProblem.TYPE_BASE + (status.is4xxClientError() ? "bad-request" : "internal-error")));
    }
    ResponseEntity<Object> response = super.handleExceptionInternal(e, body, headers, status, request);
    if (response != null && response.getBody() instanceof ProblemDetail pd) {
      if (pd.getInstance() == null && request instanceof ServletWebRequest swr) {
        pd.setInstance(URI.create(swr.getRequest().getRequestURI()));
      }
      return ResponseEntity.status(response.getStatusCode()).headers(response.getHeaders())
          .contentType(MediaType.APPLICATION_PROBLEM_JSON).body(pd);
    }
    return response;
  }

  private static ResponseEntity<ProblemDetail> respond(ProblemDetail problem, WebRequest request) {
    if (request instanceof ServletWebRequest swr) {
      problem.setInstance(URI.create(swr.getRequest().getRequestURI()));
    }
    return ResponseEntity.status(problem.getStatus()).contentType(MediaType.APPLICATION_PROBLEM_JSON).body(problem);
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  private static ResponseEntity<Object> cast(ResponseEntity<ProblemDetail> response) {
    return (ResponseEntity) response;
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
