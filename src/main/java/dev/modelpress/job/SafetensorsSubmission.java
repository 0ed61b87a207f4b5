package dev.modelpress.job;

import dev.modelpress.api.dto.JobRequest;
import dev.modelpress.api.dto.JobStep;
import dev.modelpress.compression.SafetensorsPipeline;
import dev.modelpress.compression.StepSpec;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.system.ApiProblem;
import java.util.List;

/**
 * Submit-time rules for jobs on safetensors checkpoints: {@link SafetensorsPipeline#check} on the
 * stored tensor catalogue, plus what a checkpoint without a graph cannot take (datasets, searches).
 * Invalid requests are collected as field errors (422); valid requests for what is not built for
 * safetensors yet are 501, but only once nothing is invalid.
 */
final class SafetensorsSubmission {

  private SafetensorsSubmission() {}

  static void check(List<JobStep> steps, List<StepSpec> specs, JobRequest request, ModelSummary summary,
      List<ApiProblem.FieldError> errors) {
    String noGraph = "a safetensors checkpoint holds weights but no graph to run";
    if (request.getCalibrationDatasetId() != null) {
      errors.add(new ApiProblem.FieldError("calibrationDatasetId", noGraph
          + ", so calibration data has nothing to flow through; leave it out (or upload the model as ONNX)"));
    }
    if (request.getEvaluationDatasetId() != null) {
      errors.add(new ApiProblem.FieldError("evaluationDatasetId", noGraph
          + ", so it cannot be evaluated; leave it out (the report has per-tensor error figures)"));
    }
    for (int i = 0; i < steps.size(); i++) {
      if (SearchSpecs.TYPE.equals(steps.get(i).getType())) {
        errors.add(new ApiProblem.FieldError("steps[" + i + "].type", "a search measures candidates in ONNX "
            + "Runtime; " + noGraph));
        return;
      }
    }
    SafetensorsPipeline.Check check = SafetensorsPipeline.check(specs, summary.tensors());
    check.invalid().forEach(v -> errors.add(new ApiProblem.FieldError(v.field(), v.message())));
    if (errors.isEmpty() && !check.notBuilt().isEmpty()) {
      throw new ApiProblem(ApiProblem.Kind.NOT_IMPLEMENTED, String.join("; ", check.notBuilt()));
    }
  }
}
