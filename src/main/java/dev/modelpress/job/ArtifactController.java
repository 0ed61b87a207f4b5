package dev.modelpress.job;

import dev.modelpress.storage.ArtifactStore;
import dev.modelpress.system.ApiProblem;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.springframework.http.HttpHeaders;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RestController;

/**
 * Streams job artifacts from storage with {@code Content-Length}, a strong {@code ETag} (the
 * SHA-256) and single-range requests, so large downloads can resume.
 */
@RestController
class ArtifactController {

  private static final Pattern RANGE = Pattern.compile("bytes=(\\d*)-(\\d*)");

  private final JobService jobs;
  private final ArtifactStore store;

  ArtifactController(JobService jobs, ArtifactStore store) {
    this.jobs = jobs;
    this.store = store;
  }

  @GetMapping("/v1/jobs/{jobId}/artifacts/{name}")
  void download(@PathVariable UUID jobId, @PathVariable String name,
      @RequestHeader(value = HttpHeaders.RANGE, required = false) String range,
      @RequestHeader(value = HttpHeaders.IF_NONE_MATCH, required = false) String ifNoneMatch,
      HttpServletResponse response) throws IOException {
    ArtifactEntity artifact = jobs.artifact(jobId, name);
    String etag = "\"" + artifact.getSha256() + "\"";
    response.setHeader(HttpHeaders.ETAG, etag);
    response.setHeader(HttpHeaders.ACCEPT_RANGES, "bytes");
    if (ifNoneMatch != null && (ifNoneMatch.equals(etag) || ifNoneMatch.equals("*"))) {
      response.setStatus(HttpServletResponse.SC_NOT_MODIFIED);
      return;
    }
    long size = artifact.getBytes();
    long start = 0;
    long end = size - 1;
    boolean partial = false;
    if (range != null) {
      Matcher m = RANGE.matcher(range.trim());
      if (!m.matches() || (m.group(1).isEmpty() && m.group(2).isEmpty())) {
        throw unsatisfiable(response, size, "unsupported Range '" + range + "'; use a single bytes=start-end range");
      }
      if (m.group(1).isEmpty()) {
        long suffix = Long.parseLong(m.group(2));
        start = Math.max(0, size - suffix);
      } else {
        start = Long.parseLong(m.group(1));
        if (!m.group(2).isEmpty()) {
          end = Math.min(end, Long.parseLong(m.group(2)));
        }
      }
      if (start >= size || start > end) {
        throw unsatisfiable(response, size, "range " + range + " is outside the artifact's " + size + " bytes");
      }
      partial = true;
    }
    long length = end - start + 1;
    response.setContentType(artifact.getContentType());
    response.setHeader(HttpHeaders.CONTENT_DISPOSITION, "attachment; filename=\"" + name + "\"");
    response.setContentLengthLong(length);
    if (partial) {
      response.setStatus(HttpServletResponse.SC_PARTIAL_CONTENT);
      response.setHeader(HttpHeaders.CONTENT_RANGE, "bytes " + start + "-" + end + "/" + size);
    }
    try (InputStream in = partial ? store.open(artifact.getStorageKey(), start, length) : store.open(artifact.getStorageKey());
        OutputStream out = response.getOutputStream()) {
      in.transferTo(out);
    }
  }

  private static ApiProblem unsatisfiable(HttpServletResponse response, long size, String detail) {
    response.setHeader(HttpHeaders.CONTENT_RANGE, "bytes */" + size);
    return new ApiProblem(ApiProblem.Kind.RANGE_NOT_SATISFIABLE, detail);
  }
}
