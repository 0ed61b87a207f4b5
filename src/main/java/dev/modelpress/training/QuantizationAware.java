package dev.modelpress.training;

import dev.modelpress.compression.quantize.LinearQuantizer;
import dev.modelpress.compression.quantize.QuantLayout;
import dev.modelpress.compression.quantize.QuantScheme;
import dev.modelpress.compression.quantize.WeightAxes;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Quantization-aware training settings and the fake quantizer: before every forward pass the
 * trainer sets each selected variable to {@code dequantize(quantize(shadow))} and applies the
 * gradient it gets at that point to the fp32 shadow weights (the straight-through estimator,
 * Bengio et al. 2013; Jacob et al. 2018).
 *
 * <p>The fake quantizer <em>is</em> the {@code quantize} step's quantizer: {@link LinearQuantizer}
 * with min/max ranges over the same {@link QuantLayout} (channel axis or group axis per tensor from
 * {@link WeightAxes}, as the step takes it), so quantizing the trained shadow weights with the
 * step ({@code bits}, {@code symmetric}, {@code granularity}, {@code range: minmax}) produces exactly
 * the codes and scales the network was trained through.
 *
 * @param scheme the integer grid (the step's {@code bits}, {@code signed}, {@code symmetric})
 * @param granularity {@code CHANNEL} or {@code GROUP} ({@code TENSOR} is allowed too)
 * @param groupSize weights per group along the reduction axis (only for {@code GROUP})
 * @param tensors the variables to fake-quantize, each with its channel and reduction axis
 */
public record QuantizationAware(
    QuantScheme scheme, QuantLayout.Mode granularity, int groupSize, Map<String, WeightAxes.Axes> tensors) {

  public QuantizationAware {
    tensors = Map.copyOf(tensors);
    if (scheme.kind() != QuantScheme.Kind.INTEGER) {
      throw new IllegalArgumentException("quantization-aware training supports integer grids, not " + scheme.label());
    }
    if (granularity == QuantLayout.Mode.GROUP && groupSize < 1) {
      throw new IllegalArgumentException("group granularity needs a positive group size");
    }
    if (tensors.isEmpty()) {
      throw new IllegalArgumentException("quantization-aware training selects no tensor");
    }
  }

  /**
   * Symmetric signed {@code bits}-bit codes for the trainable tensors of rank ≥ 2 of {@code model}
   * (the weights the {@code quantize} step selects by default; biases stay fp32), with the axes the
   * step uses for them.
   *
   * @param granularity {@code CHANNEL} (one scale per output channel) or {@code GROUP}
   */
  public static QuantizationAware symmetric(ModelProto model, Collection<String> trainable, int bits,
      QuantLayout.Mode granularity, int groupSize) {
    WeightAxes axes = WeightAxes.of(model.getGraph());
    Map<String, WeightAxes.Axes> selected = new LinkedHashMap<>();
    for (TensorProto t : model.getGraph().getInitializerList()) {
      if (trainable.contains(t.getName()) && t.getDimsCount() >= 2) {
        selected.put(t.getName(), axes.of(t.getName(), t.getDimsCount()));
      }
    }
    return new QuantizationAware(QuantScheme.integer(bits, true, true), granularity, groupSize, selected);
  }

  /** The parameter layout of tensor {@code name} with dims {@code dims}, as the quantize step builds it. */
  public QuantLayout layout(String name, long[] dims) {
    WeightAxes.Axes a = tensors.get(name);
    if (a == null) {
      throw new IllegalArgumentException("tensor '" + name + "' is not quantization-aware");
    }
    return switch (granularity) {
      case TENSOR -> QuantLayout.perTensor(dims);
      case CHANNEL -> QuantLayout.perChannel(dims, a.channel());
      case GROUP -> QuantLayout.perGroup(dims, a.reduction(), groupSize);
    };
  }

  /** Codes and scales of {@code w}: round-to-nearest on the min/max grid. */
  public LinearQuantizer.Result quantize(String name, long[] dims, float[] w) {
    return LinearQuantizer.quantize(w, layout(name, dims), scheme, false);
  }

  /** {@code dequantize(quantize(w))}: the values the quantized model will compute with. */
  public float[] fakeQuantize(String name, long[] dims, float[] w) {
    QuantLayout layout = layout(name, dims);
    return LinearQuantizer.dequantize(LinearQuantizer.quantize(w, layout, scheme, false), layout, scheme);
  }
}
