package dev.modelpress.compression;

import java.util.List;

/**
 * Weight-only integer quantization: weights become int8 initializers with scales and zero points,
 * dequantized by standard ONNX operators at run time. Only {@code bits = 8} is implemented so far.
 * A {@code null} granularity means {@code CHANNEL}; {@code null} lists mean empty.
 */
public record QuantizeSpec(
    int bits, boolean symmetric, Granularity granularity, List<String> include, List<String> exclude)
    implements StepSpec {

  /** One scale per tensor, or one per output channel. */
  public enum Granularity {
    TENSOR,
    CHANNEL
  }

  public QuantizeSpec {
    granularity = granularity == null ? Granularity.CHANNEL : granularity;
    include = include == null ? List.of() : List.copyOf(include);
    exclude = exclude == null ? List.of() : List.copyOf(exclude);
  }

  /** int8 quantization of the default weights. */
  public static QuantizeSpec int8(boolean symmetric, Granularity granularity) {
    return new QuantizeSpec(8, symmetric, granularity, List.of(), List.of());
  }

  @Override
  public String type() {
    return "quantize";
  }
}
