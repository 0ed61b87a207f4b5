package dev.modelpress.compression.quantize;

import java.util.Arrays;

/**
 * How a tensor's elements share quantization parameters. The tensor is viewed as {@code [outer,
 * extent, inner]} around one axis (row-major, so {@code inner} elements are contiguous):
 *
 * <ul>
 *   <li>{@code TENSOR}: one parameter set; the view is {@code [1, n, 1]}.
 *   <li>{@code CHANNEL}: one per index of the channel axis ({@code extent} of them).
 *   <li>{@code GROUP}: one per block of {@code groupSize} consecutive indices of the reduction axis,
 *       for each (outer, inner) position: {@code outer · blocks · inner} parameter sets, in the
 *       row-major order of the tensor's dims with the axis replaced by {@code blocks}, which is the
 *       shape ONNX's blocked DequantizeLinear (opset 21) gives scales. The last block may be short.
 * </ul>
 *
 * <p>The quantizer walks the tensor in <em>runs</em>: contiguous element ranges whose parameters
 * are either one set ({@link #sharedRuns()}) or consecutive sets, one per element.
 */
public record QuantLayout(long[] dims, int axis, Mode mode, int outer, int extent, int inner, int groupSize) {

  /** Parameter sharing. */
  public enum Mode {
    TENSOR,
    CHANNEL,
    GROUP
  }

  public QuantLayout {
    dims = dims.clone();
  }

  /** One scale for all {@code dims}. */
  public static QuantLayout perTensor(long... dims) {
    int n = Math.toIntExact(count(dims, 0, dims.length));
    return new QuantLayout(dims, -1, Mode.TENSOR, 1, n, 1, n);
  }

  /** One scale per index of {@code axis}. */
  public static QuantLayout perChannel(long[] dims, int axis) {
    return new QuantLayout(dims, axis, Mode.CHANNEL, Math.toIntExact(count(dims, 0, axis)), Math.toIntExact(dims[axis]),
        Math.toIntExact(count(dims, axis + 1, dims.length)), 1);
  }

  /** One scale per {@code groupSize} consecutive indices of {@code axis}. */
  public static QuantLayout perGroup(long[] dims, int axis, int groupSize) {
    if (groupSize <= 0) {
      throw new IllegalArgumentException("group size must be positive");
    }
    return new QuantLayout(dims, axis, Mode.GROUP, Math.toIntExact(count(dims, 0, axis)), Math.toIntExact(dims[axis]),
        Math.toIntExact(count(dims, axis + 1, dims.length)), groupSize);
  }

  /** Element count. */
  public int size() {
    return outer * extent * inner;
  }

  /** Blocks along the axis for {@code GROUP}: ceil(extent / groupSize). */
  public int blocks() {
    return mode == Mode.GROUP ? (extent + groupSize - 1) / groupSize : 1;
  }

  /** Number of parameter sets (scales). */
  public int params() {
    return switch (mode) {
      case TENSOR -> 1;
      case CHANNEL -> extent;
      case GROUP -> outer * blocks() * inner;
    };
  }

  /** The scales' dims as ONNX DequantizeLinear takes them: [], [C], or dims with the axis = blocks. */
  public long[] paramDims() {
    return switch (mode) {
      case TENSOR -> new long[0];
      case CHANNEL -> new long[] {extent};
      case GROUP -> {
        long[] d = dims.clone();
        d[axis] = blocks();
        yield d;
      }
    };
  }

  /** Whether the extent is padded to whole blocks (the last group is short). */
  public boolean padded() {
    return mode == Mode.GROUP && extent % groupSize != 0;
  }

  // ---- runs ------------------------------------------------------------------------------

  /**
   * Whether every run uses one parameter set and every set has exactly one run, so each set can be
   * ranged and quantized while its run is in cache.
   */
  boolean fused() {
    return switch (mode) {
      case TENSOR -> true;
      case CHANNEL -> inner > 1 && outer == 1;
      case GROUP -> inner == 1;
    };
  }

  /** Whether runs use one parameter set each (else element j of a run uses set {@code param + j}). */
  boolean sharedRuns() {
    return switch (mode) {
      case TENSOR -> true;
      case CHANNEL -> inner > 1;
      case GROUP -> inner == 1;
    };
  }

  int runs() {
    if (mode == Mode.TENSOR) {
      return 1;
    }
    if (inner == 1) {
      return mode == Mode.GROUP ? outer * blocks() : outer;
    }
    return outer * extent;
  }

  /** First element of run {@code r}. */
  int runStart(int r) {
    if (mode == Mode.TENSOR) {
      return 0;
    }
    if (inner == 1) {
      return mode == Mode.GROUP ? (r / blocks()) * extent + (r % blocks()) * groupSize : r * extent;
    }
    return r * inner;
  }

  int runLength(int r) {
    if (mode == Mode.TENSOR) {
      return extent;
    }
    if (inner == 1) {
      return mode == Mode.GROUP ? Math.min(groupSize, extent - (r % blocks()) * groupSize) : extent;
    }
    return inner;
  }

  /** The parameter set of the run (shared runs) or of its first element. */
  int runParam(int r) {
    if (mode == Mode.TENSOR) {
      return 0;
    }
    if (inner == 1) {
      return mode == Mode.GROUP ? r : 0;
    }
    int o = r / extent;
    int d = r % extent;
    return mode == Mode.CHANNEL ? d : (o * blocks() + d / groupSize) * inner;
  }

  /** The parameter set of element {@code e}. */
  int paramOf(int e) {
    return switch (mode) {
      case TENSOR -> 0;
      case CHANNEL -> (e / inner) % extent;
      case GROUP -> {
        int i = e % inner;
        int d = (e / inner) % extent;
        int o = e / (inner * extent);
        yield (o * blocks() + d / groupSize) * inner + i;
      }
    };
  }

  private static long count(long[] dims, int from, int to) {
    long n = 1;
    for (int d = from; d < to; d++) {
      n = Math.multiplyExact(n, dims[d]);
    }
    return n;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof QuantLayout l && Arrays.equals(dims, l.dims) && axis == l.axis && mode == l.mode
        && groupSize == l.groupSize;
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(dims) * 31 + mode.hashCode() * 7 + axis + groupSize;
  }

  @Override
  public String toString() {
    return mode + Arrays.toString(dims) + (mode == Mode.TENSOR ? "" : " axis " + axis)
        + (mode == Mode.GROUP ? " group " + groupSize : "");
  }
}
