/**
 * Evaluation: runs an original and a compressed model on the same inputs in ONNX Runtime and
 * measures what compression cost (cosine similarity, errors, top-1 agreement, accuracy when the
 * dataset has labels) and what it gained (latency). Also the ONNX Runtime runs data-aware
 * compression needs: {@link dev.modelpress.evaluation.ActivationCollector} streams intermediate
 * tensors of calibration batches, {@link dev.modelpress.evaluation.WeightProbe} measures output
 * fidelity with some weights replaced. Plain Java, no Spring; every ONNX Runtime native object is
 * closed by the code that opened it.
 */
package dev.modelpress.evaluation;
