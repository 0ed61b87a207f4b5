package dev.modelpress.compression;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.onnx.OnnxExternalData;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.ExternalDataModels;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The acceptance test for models over the protobuf limit: a 2.4 GB external-data model (nine 8192 ×
 * 8192 fp32 MatMuls) is quantized to int8 by a JVM limited to a 512 MiB heap, then the output is
 * checked against the input values and run in ONNX Runtime. Runs by default (tag {@code slow} only
 * labels it); it needs about 3 GB of free disk and deletes what it writes.
 */
@Tag("slow")
class LargeExternalModelTest {

  private static final int LAYERS = 9;
  private static final int K = 8192;

  private Path dir;

  @BeforeEach
  void makeDir() throws Exception {
    dir = Files.createTempDirectory("modelpress-large");
  }

  @AfterEach
  void deleteDir() throws Exception {
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  @Test
  void quantizesA2point4GbExternalDataModelInA512MiBHeap() throws Exception {
    FileStore store = Files.getFileStore(dir);
    Assumptions.assumeTrue(store.getUsableSpace() >= 10L << 30,
        "skipped: the large-model test needs 10 GiB free in " + dir + ", " + (store.getUsableSpace() >> 20) + " MiB free");
    Path in = Files.createDirectory(dir.resolve("in"));
    Path model = ExternalDataModels.matMulChain(in, LAYERS, K, 42);
    long inputBytes = Files.size(in.resolve("model.onnx.data"));
    assertThat(inputBytes).isEqualTo((long) LAYERS * K * K * 4).isGreaterThan(Integer.MAX_VALUE);

    Path outDir = Files.createDirectory(dir.resolve("out"));
    Path out = outDir.resolve("model.onnx");
    Path log = dir.resolve("child.log");
    Path argfile = dir.resolve("child.args");
    Files.writeString(argfile, "-cp \"" + System.getProperty("java.class.path").replace("\\", "\\\\") + "\"");
    Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Xmx512m", "-XX:+UseSerialGC", "@" + argfile, QuantizeExternalMain.class.getName(), model.toString(), out.toString())
        .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    boolean finished = child.waitFor(4, TimeUnit.MINUTES);
    if (!finished) {
      child.destroyForcibly().waitFor();
    }
    String output = Files.readString(log);
    assertThat(finished).as("child finished; output:\n%s", output).isTrue();
    assertThat(output).doesNotContain("OutOfMemoryError");
    assertThat(child.exitValue()).as("child exit; output:\n%s", output).isZero();
    long maxHeap = value(output, "maxHeap=");
    long peakHeap = value(output, "peakHeap=");
    assertThat(maxHeap).isLessThanOrEqualTo(512L << 20);
    assertThat(inputBytes).isGreaterThan(4 * maxHeap);
    System.out.printf("large model: %d input bytes, %d output bytes, peak heap %d MiB of %d MiB%n",
        inputBytes, Files.size(outDir.resolve("model.onnx.data")), peakHeap >> 20, maxHeap >> 20);

    // int8 codes are 1/4 of the fp32 bytes (plus 4 KiB alignment padding between tensors).
    long outputBytes = Files.size(outDir.resolve("model.onnx.data"));
    assertThat(outputBytes).isBetween(inputBytes / 4, inputBytes / 4 + LAYERS * 4096L);
    assertThat(Files.size(out)).isLessThan(1 << 20);

    float[] x = OnnxGraphBuilder.randomFloats(7, K, 1f);
    float[] exact = x;
    float[] decoded = x;
    try (OnnxExternalData original = OnnxExternalData.open(model); OnnxExternalData q = OnnxExternalData.open(out)) {
      for (int l = 0; l < LAYERS; l++) {
        MemorySegment w = ExternalDataModels.bytes(original, "W" + l);
        MemorySegment codes = ExternalDataModels.bytes(q, "W" + l + "_quantized");
        float[] scales = Models.floats(q.model(), "W" + l + "_scale");
        assertThat(scales).hasSize(K);
        // Spot-check: every dequantized value is within half a step of the input, at a few rows.
        for (long row : new long[] {0, 1234, K - 1}) {
          for (int c = 0; c < K; c++) {
            long i = row * K + c;
            float v = w.get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4 * i);
            float dq = codes.get(ValueLayout.JAVA_BYTE, i) * scales[c];
            if (Math.abs(dq - v) > scales[c] / 2 * 1.0001) {
              throw new AssertionError("W" + l + "[" + row + "," + c + "] = " + v + " decodes to " + dq);
            }
          }
        }
        exact = ExternalDataModels.rowTimes(exact, w, K);
        decoded = rowTimesDequantized(decoded, codes, scales);
      }
      TensorProto first = q.model().getGraph().getInitializer(0);
      assertThat(OnnxExternalData.isExternal(first)).isTrue();
    }
    try (OrtRunner ort = OrtRunner.unfused(out)) {
      float[] y = ort.run("y", "x", x, 1, K);
      // ONNX Runtime reads the external int8 data: it agrees with the Java decoding to float rounding.
      assertThat(ExternalDataQuantizerTest.maxRelativeError(decoded, y)).isLessThan(1e-4);
      // And int8 per-channel weights keep the 9-layer output close to fp32.
      assertThat(cosine(exact, y)).isGreaterThan(0.999);
    }
  }

  private static float[] rowTimesDequantized(float[] x, MemorySegment codes, float[] scales) {
    double[] acc = new double[K];
    byte[] row = new byte[K];
    for (int i = 0; i < K; i++) {
      MemorySegment.copy(codes, ValueLayout.JAVA_BYTE, (long) i * K, row, 0, K);
      double xi = x[i];
      for (int j = 0; j < K; j++) {
        acc[j] += xi * row[j];
      }
    }
    float[] y = new float[K];
    for (int j = 0; j < K; j++) {
      y[j] = (float) (acc[j] * scales[j]);
    }
    return y;
  }

  private static double cosine(float[] a, float[] b) {
    double ab = 0;
    double aa = 0;
    double bb = 0;
    for (int i = 0; i < a.length; i++) {
      ab += a[i] * (double) b[i];
      aa += a[i] * (double) a[i];
      bb += b[i] * (double) b[i];
    }
    return ab / Math.sqrt(aa * bb);
  }

  private static long value(String output, String key) {
    return output.lines().filter(l -> l.startsWith(key)).mapToLong(l -> Long.parseLong(l.substring(key.length())))
        .findFirst().orElseThrow(() -> new AssertionError("no " + key + " in child output:\n" + output));
  }
}
