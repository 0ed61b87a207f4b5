/**
 * Compression algorithms as pure functions of (model, step specs) to (model, report): magnitude,
 * N:M and structured pruning (with the graph rewrite that removes channels), weight sharing and the
 * Deep Compression archive, weight-only int8 quantization of ONNX initializers, the tensor selection
 * and spec validation that job submission runs before queueing, and the pipeline that chains steps
 * with cooperative cancellation. Plain Java, no Spring, JPA or HTTP.
 */
package dev.modelpress.compression;
