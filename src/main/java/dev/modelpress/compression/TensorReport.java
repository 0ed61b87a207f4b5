package dev.modelpress.compression;

import java.util.List;

/**
 * What one step did to one tensor.
 *
 * @param name the tensor
 * @param shape its dims
 * @param parameters its element count
 * @param bytesBefore stored bytes before the step
 * @param bytesAfter stored bytes after the step, including scales and zero points
 * @param sparsityBefore fraction of exact zeros before
 * @param sparsityAfter fraction of exact zeros after (of the dequantized values for quantization)
 * @param mse mean squared error of the values the model now computes with, against the step's input
 * @param sqnrDb signal-to-noise ratio 10·log10(Σw² / Σ(w−ŵ)²) in dB; {@code null} when the
 *     error is exactly zero (infinite) or the tensor is all zeros (undefined)
 * @param bits integer bits for quantization, {@code null} for pruning
 * @param granularity {@code TENSOR} or {@code CHANNEL} for quantization, {@code null} for pruning
 */
public record TensorReport(
    String name,
    List<Long> shape,
    long parameters,
    long bytesBefore,
    long bytesAfter,
    double sparsityBefore,
    double sparsityAfter,
    Double mse,
    Double sqnrDb,
    Integer bits,
    String granularity) {

  public TensorReport {
    shape = List.copyOf(shape);
  }
}
