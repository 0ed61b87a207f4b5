package dev.modelpress.compression;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Path;

/**
 * Child-JVM entry point for {@link LargeExternalModelTest}: quantizes {@code args[0]} to {@code
 * args[1]} (int8 symmetric per channel, or int4 symmetric in groups of 32 when {@code args[2]} is
 * {@code int4g32}) and prints the step summary, then {@code peakHeap=} the sum of the heap pools'
 * peak usage, {@code maxHeap=} the heap limit and {@code seconds=} the quantization's wall time.
 */
final class QuantizeExternalMain {

  private QuantizeExternalMain() {}

  public static void main(String[] args) throws Exception {
    QuantizeSpec spec = args.length > 2 && args[2].equals("int4g32")
        ? QuantizeSpec.integer(4, true, QuantizeSpec.Granularity.GROUP, 32, QuantizeSpec.RangeMethod.MINMAX)
        : QuantizeSpec.int8(true, QuantizeSpec.Granularity.CHANNEL);
    long start = System.nanoTime();
    StepReport r = ExternalDataQuantizer.quantize(Path.of(args[0]), Path.of(args[1]), spec,
        (step, steps, type, item, items, message) -> System.out.println(item + "/" + items + " " + message));
    System.out.println("seconds=" + (System.nanoTime() - start) / 1_000_000_000.0);
    System.out.println(r.summary());
    long peak = 0;
    for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
      if (pool.getType() == MemoryType.HEAP) {
        peak += pool.getPeakUsage().getUsed();
      }
    }
    System.out.println("peakHeap=" + peak);
    System.out.println("maxHeap=" + Runtime.getRuntime().maxMemory());
  }
}
