/**
 * Reading uploaded {@code .zip} and {@code .tar} archives without trusting them: one reader, one set
 * of limits, shared by every archive upload (ONNX with external data, sharded safetensors).
 */
package dev.modelpress.format.archive;
