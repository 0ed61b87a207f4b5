package dev.modelpress.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.openjdk.jmh.annotations.Benchmark;

/**
 * The single-thread operations of {@link QuantKernelBenchmark}, timed by the calling thread's CPU
 * time instead of wall time and interleaved: every round runs each kernel and the copy once, in
 * turn. On a machine whose cores other processes share, wall-time throughput mostly measures how
 * much of a core the scheduler gave each JMH iteration, and consecutive iterations of different
 * benchmarks see different loads; a thread's CPU time excludes the time it waited, and interleaving
 * spreads what load remains (cache and memory-bus contention) evenly over all kernels. Reports per
 * kernel the median over rounds as GB/s of fp32 input and as a ratio to the median copy, and the
 * spread of the per-round ratio. {@code TwoThreads} operations are left out: the caller's CPU time
 * does not include its helper's.
 */
final class QuantKernelCpuTime {

  private QuantKernelCpuTime() {}

  static void run(int warmupRounds, int rounds) throws Exception {
    QuantKernelBenchmark state = new QuantKernelBenchmark();
    state.allocate();
    try {
      List<Method> ops = new ArrayList<>();
      for (Method m : QuantKernelBenchmark.class.getMethods()) {
        if (m.isAnnotationPresent(Benchmark.class) && !m.getName().endsWith("TwoThreads")) {
          ops.add(m);
        }
      }
      ops.sort((a, b) -> a.getName().equals("copyFp32") ? -1 : b.getName().equals("copyFp32") ? 1
          : a.getName().compareTo(b.getName()));
      ThreadMXBean cpu = ManagementFactory.getThreadMXBean();
      Map<String, long[]> nanos = new LinkedHashMap<>();
      for (Method m : ops) {
        nanos.put(m.getName(), new long[rounds]);
      }
      for (int r = -warmupRounds; r < rounds; r++) {
        for (Method m : ops) {
          long t0 = cpu.getCurrentThreadCpuTime();
          m.invoke(state);
          long t1 = cpu.getCurrentThreadCpuTime();
          if (r >= 0) {
            nanos.get(m.getName())[r] = t1 - t0;
          }
        }
      }
      long[] copy = nanos.get("copyFp32");
      double copyMedian = median(copy);
      System.out.printf(Locale.ROOT, "Quantization kernels by thread CPU time, %d interleaved rounds (%d warm-up), "
          + "one thread, GB/s of fp32 input at the median; x copy = median ratio [min, max] over rounds:%n", rounds,
          warmupRounds);
      nanos.forEach((name, t) -> {
        double[] ratio = new double[rounds];
        for (int r = 0; r < rounds; r++) {
          ratio[r] = (double) copy[r] / t[r];
        }
        Arrays.sort(ratio);
        System.out.printf(Locale.ROOT, "  %-30s %6.2f GB/s  %5.2f x copy  [%4.2f, %4.2f]%n", name,
            QuantKernelBenchmark.INPUT_BYTES / median(t), copyMedian / median(t), ratio[0], ratio[rounds - 1]);
      });
    } finally {
      state.free();
    }
  }

  private static double median(long[] t) {
    long[] s = t.clone();
    Arrays.sort(s);
    return s[s.length / 2];
  }
}
