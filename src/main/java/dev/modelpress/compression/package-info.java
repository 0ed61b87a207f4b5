/**
 * Compression algorithms as pure functions of (model, step specs, calibration data) to (model,
 * report): magnitude, N:M and structured pruning (with the graph rewrite that removes channels),
 * weight sharing and the Deep Compression archive, weight-only int8 quantization of ONNX
 * initializers, data-aware quantization (static activation QDQ with minmax/percentile/entropy
 * calibrators, GPTQ, per-tensor sensitivity and mixed precision, which run the model through the
 * evaluation package's ONNX Runtime helpers), the tensor selection and spec validation that job
 * submission runs before queueing, and the pipeline that chains steps with cooperative
 * cancellation. Plain Java, no Spring, JPA or HTTP.
 */
package dev.modelpress.compression;
