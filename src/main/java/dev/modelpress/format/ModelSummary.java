package dev.modelpress.format;

import java.util.List;
import java.util.Map;

/**
 * What a model file holds, as read and validated at upload.
 *
 * @param format {@code onnx} or {@code safetensors}
 * @param parameterCount total number of weight elements
 * @param tensors the weight tensors (ONNX initializers, safetensors entries)
 * @param inputs graph inputs (empty for safetensors)
 * @param outputs graph outputs (empty for safetensors)
 * @param opsets ONNX operator-set versions by domain ({@code ""} is the default domain)
 * @param irVersion ONNX IR version, or 0
 * @param producer producer name and version, or {@code null}
 * @param metadata free-form metadata (ONNX {@code metadata_props}, safetensors {@code __metadata__})
 */
public record ModelSummary(
    String format,
    long parameterCount,
    List<TensorInfo> tensors,
    List<ValueInfo> inputs,
    List<ValueInfo> outputs,
    Map<String, Long> opsets,
    long irVersion,
    String producer,
    Map<String, String> metadata) {

  public ModelSummary {
    tensors = List.copyOf(tensors);
    inputs = List.copyOf(inputs);
    outputs = List.copyOf(outputs);
    opsets = Map.copyOf(opsets);
    metadata = Map.copyOf(metadata);
  }
}
