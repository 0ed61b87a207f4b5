/**
 * Weight-only quantization: the code grids ({@link QuantScheme}), how a tensor's weights share
 * scales ({@link QuantLayout}), the range selection and rounding ({@link LinearQuantizer}) on Vector
 * API kernels ({@link QuantKernels}), bit packing ({@link Packing}), and the ONNX each scheme is
 * written as ({@link WeightEncoder}): DequantizeLinear (per-axis from opset 13, blocked and int4
 * from 21), ONNX Runtime's MatMulNBits, or packed bytes with a standard-operator unpack subgraph.
 * Plain Java, no Spring.
 */
package dev.modelpress.compression.quantize;
