package dev.modelpress.system;

import java.util.List;
import org.springframework.http.ProblemDetail;

/** Builds {@link ProblemDetail}s of our kinds; also used for job errors stored with the job. */
public final class Problems {

  private Problems() {}

  public static ProblemDetail of(ApiProblem.Kind kind, String detail, List<ApiProblem.FieldError> errors) {
    ProblemDetail problem = ProblemDetail.forStatusAndDetail(kind.status(), detail);
    problem.setType(kind.type());
    problem.setTitle(kind.title());
    if (!errors.isEmpty()) {
      problem.setProperty("errors", errors);
    }
    return problem;
  }

  public static ProblemDetail validation(List<ApiProblem.FieldError> errors) {
    String detail = errors.isEmpty() ? "the request is invalid"
        : errors.size() == 1 ? errors.getFirst().field() + ": " + errors.getFirst().message()
        : errors.size() + " fields are invalid; first: " + errors.getFirst().field() + ": " + errors.getFirst().message();
    return of(ApiProblem.Kind.VALIDATION_FAILED, detail, errors);
  }
}
