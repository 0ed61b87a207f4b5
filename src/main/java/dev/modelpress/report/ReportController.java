package dev.modelpress.report;

import dev.modelpress.job.ArtifactEntity;
import dev.modelpress.job.JobEntity;
import dev.modelpress.job.JobService;
import dev.modelpress.job.JobState;
import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.system.ApiProblem;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.UUID;
import org.springframework.http.HttpHeaders;
import org.springframework.http.InvalidMediaTypeException;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RestController;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code GET /v1/jobs/{jobId}/report}: the job's stored {@code report.json}, as JSON or as a
 * self-contained HTML page, chosen by {@code Accept}. JSON is the default (no {@code Accept},
 * {@code *}{@code /*}, or a tie); a browser's {@code text/html} gets the page. The JSON bytes are
 * the stored artifact's, unchanged.
 */
@RestController
class ReportController {

  /** What the endpoint can produce. */
  enum Format {
    JSON(MediaType.APPLICATION_JSON),
    HTML(MediaType.TEXT_HTML);

    final MediaType type;

    Format(MediaType type) {
      this.type = type;
    }
  }

  /** Scripts are never needed: the page is static HTML, CSS and SVG. */
  static final String CONTENT_SECURITY_POLICY =
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
          + "frame-ancestors 'none'";

  private final JobService jobs;
  private final ArtifactStore store;
  private final JsonMapper json;

  ReportController(JobService jobs, ArtifactStore store, JsonMapper json) {
    this.jobs = jobs;
    this.store = store;
    this.json = json;
  }

  @GetMapping("/v1/jobs/{jobId}/report")
  void report(@PathVariable UUID jobId, @RequestHeader(value = HttpHeaders.ACCEPT, required = false) String accept,
      HttpServletResponse response) throws IOException {
    JobEntity job = jobs.get(jobId);
    Format format = choose(accept);
    if (job.getState() != JobState.SUCCEEDED) {
      throw new ApiProblem(ApiProblem.Kind.NO_REPORT, switch (job.getState()) {
        case QUEUED, RUNNING -> "job " + jobId + " is " + job.getState()
            + "; its report is written when it succeeds: poll GET /v1/jobs/" + jobId;
        default -> "job " + jobId + " is " + job.getState() + " and has no report; GET /v1/jobs/" + jobId
            + " says why";
      });
    }
    ArtifactEntity artifact = jobs.artifact(jobId, "report.json");
    response.setHeader(HttpHeaders.VARY, HttpHeaders.ACCEPT);
    if (format == Format.JSON) {
      response.setContentType(MediaType.APPLICATION_JSON_VALUE);
      response.setContentLengthLong(artifact.getBytes());
      response.setHeader(HttpHeaders.ETAG, "\"" + artifact.getSha256() + "\"");
      try (InputStream in = store.open(artifact.getStorageKey()); OutputStream out = response.getOutputStream()) {
        in.transferTo(out);
      }
      return;
    }
    JsonNode report;
    try (InputStream in = store.open(artifact.getStorageKey())) {
      report = json.readTree(in);
    }
    byte[] page = ReportPage.render(report, json).getBytes(StandardCharsets.UTF_8);
    response.setContentType("text/html;charset=UTF-8");
    response.setHeader("Content-Security-Policy", CONTENT_SECURITY_POLICY);
    response.setHeader("X-Content-Type-Options", "nosniff");
    response.setContentLength(page.length);
    try (OutputStream out = response.getOutputStream()) {
      out.write(page);
    }
  }

  /**
   * The format the {@code Accept} header prefers: highest quality first, then the more specific
   * match ({@code text/html} over {@code *}{@code /*}), then JSON.
   *
   * @throws ApiProblem 406 when neither format is acceptable, 400 when the header does not parse
   */
  static Format choose(String accept) {
    if (accept == null || accept.isBlank()) {
      return Format.JSON;
    }
    List<MediaType> ranges;
    try {
      ranges = MediaType.parseMediaTypes(accept);
    } catch (InvalidMediaTypeException e) {
      throw new ApiProblem(ApiProblem.Kind.INVALID_PARAMETER, "Accept header is not a list of media types: "
          + e.getMessage(), List.of(new ApiProblem.FieldError("Accept", "not a list of media types")));
    }
    Format best = null;
    double bestQuality = 0;
    int bestSpecificity = -1;
    for (Format f : Format.values()) {
      double quality = 0;
      int specificity = -1;
      for (MediaType range : ranges) {
        if (!range.includes(f.type)) {
          continue;
        }
        int s = range.isWildcardType() ? 0 : range.isWildcardSubtype() ? 1 : 2;
        if (s > specificity) {
          // The most specific matching range decides the quality (RFC 9110 §12.5.1).
          specificity = s;
          quality = range.getQualityValue();
        }
      }
      if (quality > bestQuality || (quality == bestQuality && quality > 0 && specificity > bestSpecificity)) {
        best = f;
        bestQuality = quality;
        bestSpecificity = specificity;
      }
    }
    if (best == null) {
      throw new ApiProblem(ApiProblem.Kind.NOT_ACCEPTABLE, "the report is available as application/json or text/html;"
          + " Accept was '" + accept + "'");
    }
    return best;
  }
}
