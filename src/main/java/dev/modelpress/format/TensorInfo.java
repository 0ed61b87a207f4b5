package dev.modelpress.format;

import java.util.List;

/**
 * One weight tensor of a model, as the catalogue that job specs are validated against.
 *
 * @param name the tensor's name in the model (ONNX initializer or safetensors key); for an ONNX
 *     tensor inside a subgraph, its name prefixed by the subgraph's scope ({@code node.attribute/},
 *     see {@link #location})
 * @param dtype the element type in the format's own words (ONNX {@code FLOAT}, safetensors {@code F32})
 * @param shape its dimensions
 * @param consumers for ONNX, the nodes reading it as {@code OpType:inputIndex} (e.g. {@code MatMul:1}),
 *     including nodes of subgraphs that read it from an outer scope; empty for formats without a graph
 * @param location {@code null} for an initializer of the main graph (and every safetensors tensor);
 *     otherwise where the ONNX tensor lives, for people: {@code Constant node} (the {@code value} of a
 *     main-graph {@code Constant}, named by its output), {@code initializer of subgraph S} or
 *     {@code Constant node in subgraph S}, S being the scope path ({@code loop.body}, {@code if.then_branch/...})
 */
public record TensorInfo(String name, String dtype, List<Long> shape, List<String> consumers, String location) {

  public TensorInfo {
    shape = List.copyOf(shape);
    consumers = List.copyOf(consumers);
  }

  /** A main-graph initializer (or a tensor of a format without graphs). */
  public TensorInfo(String name, String dtype, List<Long> shape, List<String> consumers) {
    this(name, dtype, shape, consumers, null);
  }

  /** Whether the tensor is a main-graph initializer, the only place most steps rewrite. */
  public boolean mainGraphInitializer() {
    return location == null;
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
