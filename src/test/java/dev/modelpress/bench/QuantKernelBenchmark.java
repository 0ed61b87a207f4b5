package dev.modelpress.bench;

import dev.modelpress.compression.quantize.LinearQuantizer;
import dev.modelpress.compression.quantize.QuantLayout;
import dev.modelpress.compression.quantize.QuantScheme;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Throughput of every min/max quantization kernel over 64 MiB of fp32 (a [4096, 4096] weight,
 * off-heap, far larger than L2), next to a plain copy of the same buffer into another 64 MiB buffer
 * in the same run: the memory-bandwidth baseline a quantizer is held to. Each operation is one whole
 * tensor, ranges and scales included; int4 also packs the codes two per byte. One thread unless the
 * name ends in {@code TwoThreads} (the same call split over the caller and one pool thread, what the
 * pipeline does with tensors of at least {@link LinearQuantizer#PARALLEL_MIN_ELEMENTS}).
 *
 * <ul>
 *   <li>{@code PerChannel}: a scale per row (axis 0: Conv, Gather, Gemm with transB), one shared run
 *       of 4096 weights per scale.
 *   <li>{@code PerChannelMatMul}: a scale per column (axis 1: MatMul B [K, N]), every row's element j
 *       using scale j.
 *   <li>{@code PerGroup32}: groups of 32 along the contiguous axis.
 *   <li>{@code Asym}: the asymmetric grid (zero point), else symmetric.
 * </ul>
 *
 * {@link Benchmarks} turns operations per second into GB/s of fp32 input and ratios to the copy.
 * Short iterations so that the whole class runs in about four minutes on a loaded 2-core machine.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx1g"})
@Threads(1)
public class QuantKernelBenchmark {

  /** Rows and columns of the benchmark weight. */
  public static final int ROWS = 4096;
  public static final int COLS = 4096;
  /** Bytes of fp32 input per operation. */
  public static final long INPUT_BYTES = 4L * ROWS * COLS;

  private Arena arena;
  private MemorySegment weights;
  private MemorySegment copy;
  private byte[] codes;
  private byte[] packed;
  private float[] scales;
  private int[] zeroPoints;
  private final QuantLayout perChannel = QuantLayout.perChannel(new long[] {ROWS, COLS}, 0);
  private final QuantLayout perChannelMatMul = QuantLayout.perChannel(new long[] {ROWS, COLS}, 1);
  private final QuantLayout perGroup = QuantLayout.perGroup(new long[] {ROWS, COLS}, 1, 32);
  private final QuantScheme int8 = QuantScheme.integer(8, true, true);
  private final QuantScheme int4 = QuantScheme.integer(4, true, true);
  private final QuantScheme int8Asym = QuantScheme.integer(8, true, false);
  private final QuantScheme int4Asym = QuantScheme.integer(4, true, false);

  @Setup
  public void allocate() {
    arena = Arena.ofShared();
    weights = arena.allocate(INPUT_BYTES, 64);
    copy = arena.allocate(INPUT_BYTES, 64);
    Random r = new Random(1);
    for (long i = 0; i < (long) ROWS * COLS; i++) {
      weights.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextGaussian() * 0.05f);
    }
    codes = new byte[ROWS * COLS];
    packed = new byte[ROWS * COLS / 2];
    scales = new float[perGroup.params()];
    zeroPoints = new int[perGroup.params()];
  }

  @TearDown
  public void free() {
    arena.close();
  }

  private byte[] run(QuantLayout layout, QuantScheme scheme, int threads) {
    byte[] out = scheme.bits() == 4 ? packed : null;
    LinearQuantizer.quantize(weights, layout, scheme, false, codes, scales, zeroPoints, out, threads);
    return out == null ? codes : out;
  }

  @Benchmark
  public MemorySegment copyFp32() {
    MemorySegment.copy(weights, 0, copy, 0, INPUT_BYTES);
    return copy;
  }

  @Benchmark
  public byte[] int8PerChannel() {
    return run(perChannel, int8, 1);
  }

  @Benchmark
  public byte[] int8PerChannelAsym() {
    return run(perChannel, int8Asym, 1);
  }

  @Benchmark
  public byte[] int4PerChannel() {
    return run(perChannel, int4, 1);
  }

  @Benchmark
  public byte[] int4PerChannelAsym() {
    return run(perChannel, int4Asym, 1);
  }

  @Benchmark
  public byte[] int8PerChannelMatMul() {
    return run(perChannelMatMul, int8, 1);
  }

  @Benchmark
  public byte[] int8PerChannelMatMulAsym() {
    return run(perChannelMatMul, int8Asym, 1);
  }

  @Benchmark
  public byte[] int4PerChannelMatMul() {
    return run(perChannelMatMul, int4, 1);
  }

  @Benchmark
  public byte[] int4PerChannelMatMulAsym() {
    return run(perChannelMatMul, int4Asym, 1);
  }

  @Benchmark
  public byte[] int8PerGroup32() {
    return run(perGroup, int8, 1);
  }

  @Benchmark
  public byte[] int8PerGroup32Asym() {
    return run(perGroup, int8Asym, 1);
  }

  @Benchmark
  public byte[] int4PerGroup32() {
    return run(perGroup, int4, 1);
  }

  @Benchmark
  public byte[] int4PerGroup32Asym() {
    return run(perGroup, int4Asym, 1);
  }

  @Benchmark
  public byte[] int8PerGroup32TwoThreads() {
    return run(perGroup, int8, 2);
  }

  @Benchmark
  public byte[] int4PerGroup32TwoThreads() {
    return run(perGroup, int4, 2);
  }

  @Benchmark
  public byte[] int8PerChannelTwoThreads() {
    return run(perChannel, int8, 2);
  }

  @Benchmark
  public byte[] int4PerChannelMatMulTwoThreads() {
    return run(perChannelMatMul, int4, 2);
  }
}
