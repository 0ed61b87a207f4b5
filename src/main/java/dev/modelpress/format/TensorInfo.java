package dev.modelpress.format;

import java.util.List;

/**
 * One weight tensor of a model, as the catalogue that job specs are validated against.
 *
 * @param name the tensor's name in the model (ONNX initializer or safetensors key)
 * @param dtype the element type in the format's own words (ONNX {@code FLOAT}, safetensors {@code F32})
 * @param shape its dimensions
 * @param consumers for ONNX, the nodes reading it as {@code OpType:inputIndex} (e.g. {@code MatMul:1});
 *     empty for formats without a graph
 */
public record TensorInfo(String name, String dtype, List<Long> shape, List<String> consumers) {

  public TensorInfo {
    shape = List.copyOf(shape);
    consumers = List.copyOf(consumers);
  }

  /** Number of elements. */
  public long elementCount() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }
}
