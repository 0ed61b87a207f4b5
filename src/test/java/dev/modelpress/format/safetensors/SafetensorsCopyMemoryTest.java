package dev.modelpress.format.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.safetensors.SafetensorsWriter.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Proves that copying a model does not hold it on the heap: a 300 MiB file is copied by a JVM
 * limited to a 64 MiB heap. Heap use may grow with the largest tensor (15 MiB here, twice: the
 * transform's output), never with the model.
 */
class SafetensorsCopyMemoryTest {

  private static final int TENSORS = 20;
  private static final int FLOATS_PER_TENSOR = 15 << 18; // 15 MiB of F32

  @TempDir Path dir;

  @Test
  void copiesAModelFiveTimesLargerThanTheHeapInA64MiBJvm() throws Exception {
    Path in = dir.resolve("big.safetensors");
    List<Tensor> tensors = new ArrayList<>();
    for (int t = 0; t < TENSORS; t++) {
      tensors.add(
          new Tensor("layer" + t, SafetensorsDtype.F32, List.of(512L, FLOATS_PER_TENSOR / 512L)));
    }
    ByteBuffer data =
        ByteBuffer.allocateDirect(FLOATS_PER_TENSOR * 4).order(ByteOrder.LITTLE_ENDIAN);
    try (SafetensorsWriter w = SafetensorsWriter.create(in, tensors, Map.of("size", "300MiB"))) {
      for (int t = 0; t < TENSORS; t++) {
        data.clear();
        for (int i = 0; i < FLOATS_PER_TENSOR; i++) {
          data.putFloat(t * 1000 + (i & 1023));
        }
        w.write("layer" + t, data.flip());
      }
    }
    assertThat(Files.size(in)).isGreaterThan(300L << 20);

    Path out = dir.resolve("copy.safetensors");
    Path log = dir.resolve("child.log");
    Path argfile = dir.resolve("child.args");
    // An argfile keeps the command line short however long the test classpath is.
    Files.writeString(argfile, "-cp \"" + escaped(System.getProperty("java.class.path")) + "\"");
    Process child =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx64m",
                "@" + argfile,
                CopyTransformingMain.class.getName(),
                in.toString(),
                out.toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    boolean finished = child.waitFor(3, TimeUnit.MINUTES);
    if (!finished) {
      child.destroyForcibly();
    }
    String output = Files.readString(log);
    assertThat(finished).as("child finished; output:\n%s", output).isTrue();
    assertThat(child.exitValue()).as("child exit; output:\n%s", output).isZero();
    long maxHeap =
        Long.parseLong(
            output.strip().lines().reduce((a, b) -> b).orElseThrow().replace("maxHeap=", ""));
    assertThat(maxHeap).isLessThanOrEqualTo(64L << 20);
    assertThat(Files.size(in)).isGreaterThan(4 * maxHeap);

    try (SafetensorsFile a = SafetensorsFile.open(in);
        SafetensorsFile b = SafetensorsFile.open(out)) {
      assertThat(b.metadata()).isEqualTo(Map.of("size", "300MiB"));
      assertThat(b.entries()).hasSize(TENSORS);
      for (int t = 0; t < TENSORS; t++) {
        FloatBuffer x = a.tensorData("layer" + t).asFloatBuffer();
        FloatBuffer y = b.tensorData("layer" + t).asFloatBuffer();
        assertThat(y.remaining()).isEqualTo(FLOATS_PER_TENSOR);
        for (int i = 0; i < FLOATS_PER_TENSOR; i++) {
          if (y.get(i) != x.get(i) + 1f) {
            throw new AssertionError(
                "layer" + t + "[" + i + "] = " + y.get(i) + ", expected " + (x.get(i) + 1f));
          }
        }
      }
    }
  }

  /** Argfiles treat backslashes as escapes inside quotes. */
  private static String escaped(String classpath) {
    return classpath.replace("\\", "\\\\");
  }
}
