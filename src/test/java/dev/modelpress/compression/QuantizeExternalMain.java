package dev.modelpress.compression;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Path;

/**
 * Child-JVM entry point for {@link LargeExternalModelTest}: quantizes {@code args[0]} to {@code
 * args[1]} (int8 symmetric per channel) and prints the step summary, then {@code peakHeap=} the sum
 * of the heap pools' peak usage and {@code maxHeap=} the heap limit.
 */
final class QuantizeExternalMain {

  private QuantizeExternalMain() {}

  public static void main(String[] args) throws Exception {
    StepReport r = ExternalDataQuantizer.quantize(Path.of(args[0]), Path.of(args[1]),
        QuantizeSpec.int8(true, QuantizeSpec.Granularity.CHANNEL),
        (step, steps, type, item, items, message) -> System.out.println(item + "/" + items + " " + message));
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
