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
 * Single-thread throughput (and, for the per-group kernels, the same whole-tensor call on two threads) of the quantization kernels over 64 MiB of fp32 (a [4096, 4096] weight,
 * off-heap, far larger than the caches), next to a plain copy of the same buffer into another
 * 64 MiB buffer in the same run: the memory-bandwidth baseline a quantizer is held to. Each
 * operation is one whole tensor, ranges and scales included; int4 also packs the codes two per
 * byte. {@link Benchmarks} turns operations per second into GB/s of fp32 input.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
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
  private final QuantLayout perGroup = QuantLayout.perGroup(new long[] {ROWS, COLS}, 1, 32);
  private final QuantScheme int8 = QuantScheme.integer(8, true, true);
  private final QuantScheme int4 = QuantScheme.integer(4, true, true);

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

  @Benchmark
  public MemorySegment copyFp32() {
    MemorySegment.copy(weights, 0, copy, 0, INPUT_BYTES);
    return copy;
  }

  @Benchmark
  public byte[] int8PerChannel() {
    LinearQuantizer.quantize(weights, perChannel, int8, false, codes, scales, zeroPoints, null, 1);
    return codes;
  }

  @Benchmark
  public byte[] int8PerGroup32() {
    LinearQuantizer.quantize(weights, perGroup, int8, false, codes, scales, zeroPoints, null, 1);
    return codes;
  }

  @Benchmark
  public byte[] int4PerChannel() {
    LinearQuantizer.quantize(weights, perChannel, int4, false, codes, scales, zeroPoints, packed, 1);
    return packed;
  }

  @Benchmark
  public byte[] int4PerGroup32() {
    LinearQuantizer.quantize(weights, perGroup, int4, false, codes, scales, zeroPoints, packed, 1);
    return packed;
  }

  /** The whole tensor split into two ranges of groups: the caller's thread and one pool thread. */
  @Benchmark
  public byte[] int8PerGroup32TwoThreads() {
    LinearQuantizer.quantize(weights, perGroup, int8, false, codes, scales, zeroPoints, null, 2);
    return codes;
  }

  @Benchmark
  public byte[] int4PerGroup32TwoThreads() {
    LinearQuantizer.quantize(weights, perGroup, int4, false, codes, scales, zeroPoints, packed, 2);
    return packed;
  }
}
