/**
 * Training-based compression on ND4J SameDiff: an ONNX graph built from common trainable
 * operators is translated into a SameDiff graph whose variables are the ONNX initializers
 * ({@link dev.modelpress.training.TrainableGraph}), trained (knowledge distillation, fine-tuning
 * with fixed sparsity masks, L1-regularised training, quantization-aware training with a
 * straight-through estimator), and the trained values are written back into the original ONNX
 * graph so the result keeps every name, input and output. Plain Java, no Spring, JPA or HTTP.
 */
package dev.modelpress.training;
