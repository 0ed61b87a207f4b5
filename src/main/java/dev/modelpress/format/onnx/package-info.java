/**
 * ONNX models: a validating, memory-mapped reader, a streaming writer, the summary that uploads
 * are catalogued with, and conversions between initializers and {@code float[]}. Plain Java over
 * the protobuf classes generated from {@code src/main/proto/onnx.proto}; no Spring.
 */
package dev.modelpress.format.onnx;
