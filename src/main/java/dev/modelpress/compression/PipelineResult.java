package dev.modelpress.compression;

import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import java.util.List;

/** The compressed model and one report per step. */
public record PipelineResult(ModelProto model, List<StepReport> steps) {

  public PipelineResult {
    steps = List.copyOf(steps);
  }
}
