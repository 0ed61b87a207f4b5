package dev.modelpress.format.safetensors;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * Run in a separate small-heap JVM by {@link SafetensorsCopyMemoryTest}: copies a safetensors file
 * adding 1 to every F32 element, then prints the heap limit it ran under.
 */
final class CopyTransformingMain {

  private CopyTransformingMain() {}

  public static void main(String[] args) throws Exception {
    try (SafetensorsFile in = SafetensorsFile.open(Path.of(args[0]))) {
      SafetensorsWriter.copyTransforming(
          in,
          Path.of(args[1]),
          (entry, data) -> {
            ByteBuffer out = ByteBuffer.allocate(data.remaining()).order(ByteOrder.LITTLE_ENDIAN);
            while (data.hasRemaining()) {
              out.putFloat(data.getFloat() + 1f);
            }
            return out.flip();
          });
    }
    System.out.println("maxHeap=" + Runtime.getRuntime().maxMemory());
  }
}
