/**
 * Compression algorithms as pure functions of (model, step specs) to (model, report): magnitude
 * pruning and weight-only quantization of ONNX initializers (schemes, kernels and ONNX encodings in
 * {@code compression.quantize}), the tensor selection and spec
 * validation that job submission runs before queueing, and the pipeline that chains steps with
 * cooperative cancellation. Plain Java, no Spring, JPA or HTTP.
 */
package dev.modelpress.compression;
