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
 * @param bits integer bits for quantization (16 for fp16/bf16 casts), {@code null} for pruning
 * @param granularity {@code TENSOR}, {@code CHANNEL} or {@code GROUP} for quantization, {@code null}
 *     for pruning and casts
 * @param groupSize weights per scale along the reduction axis for {@code GROUP}, else {@code null}
 * @param scheme the code grid ({@code int8}, {@code uint4}, {@code binary}, {@code ternary}) or
 *     {@code fp16}/{@code bf16}; {@code null} for pruning
 * @param range how the range was chosen: {@code minmax}, {@code mse} (searched clipping), or {@code
 *     closed-form} (binary: mean |w|); {@code null} where no range applies
 * @param clipRatio mean fraction of the min/max range kept (1 = no clipping; for ternary the mean
 *     threshold / max|w|); {@code null} where it does not apply
 * @param encoding how the ONNX stores and decodes it: {@code DequantizeLinear}, {@code MatMulNBits},
 *     {@code packed+unpack}, {@code Cast}, or {@code unchanged}
 * @param bitsPerWeight 8 · bytesAfter / parameters: the effective bits, scales included
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
    String granularity,
    Integer groupSize,
    String scheme,
    String range,
    Double clipRatio,
    String encoding,
    Double bitsPerWeight) {

  public TensorReport {
    shape = List.copyOf(shape);
  }

  /** A report without the quantization details (pruning, and steps that have none). */
  public TensorReport(String name, List<Long> shape, long parameters, long bytesBefore, long bytesAfter,
      double sparsityBefore, double sparsityAfter, Double mse, Double sqnrDb, Integer bits, String granularity) {
    this(name, shape, parameters, bytesBefore, bytesAfter, sparsityBefore, sparsityAfter, mse, sqnrDb, bits,
        granularity, null, null, null, null, null, null);
  }
}
