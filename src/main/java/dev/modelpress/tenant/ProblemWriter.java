package dev.modelpress.tenant;

import dev.modelpress.system.ApiProblem;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.http.MediaType;
import org.springframework.stereotype.Component;
import tools.jackson.databind.json.JsonMapper;

/**
 * Writes RFC 9457 problem documents from servlet filters (authentication, rate limit, quota),
 * which run before Spring MVC's exception handling, in the same shape {@code ProblemHandler} uses.
 */
@Component
class ProblemWriter {

  private final JsonMapper json;

  ProblemWriter(JsonMapper json) {
    this.json = json;
  }

  void write(HttpServletRequest request, HttpServletResponse response, ApiProblem.Kind kind, String detail,
      Map<String, Object> properties) throws IOException {
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("type", kind.type().toString());
    body.put("title", kind.title());
    body.put("status", kind.status().value());
    body.put("detail", detail);
    body.put("instance", request.getRequestURI());
    body.putAll(properties);
    response.setStatus(kind.status().value());
    response.setContentType(MediaType.APPLICATION_PROBLEM_JSON_VALUE);
    response.setCharacterEncoding("UTF-8");
    json.writeValue(response.getOutputStream(), body);
  }

  void write(HttpServletRequest request, HttpServletResponse response, ApiProblem problem) throws IOException {
    write(request, response, problem.kind(), problem.getMessage(), problem.properties());
  }
}
