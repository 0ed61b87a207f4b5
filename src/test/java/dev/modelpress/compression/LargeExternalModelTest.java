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
    // Opset 21, so int4 groups stream as blocked DequantizeLinear (int8 per channel is the same at any opset >= 13).
    Path model = ExternalDataModels.matMulChain(in, LAYERS, K, 42, 21);
    long inputBytes = Files.size(in.resolve("model.onnx.data"));
    assertThat(inputBytes).isEqualTo((long) LAYERS * K * K * 4).isGreaterThan(Integer.MAX_VALUE);

    Path outDir = Files.createDirectory(dir.resolve("out"));
    Path out = outDir.resolve("model.onnx");
    String output = quantizeInChild(model, out, "int8");
    long maxHeap = value(output, "maxHeap=");
    long peakHeap = value(output, "peakHeap=");
    assertThat(maxHeap).isLessThanOrEqualTo(512L << 20);
    assertThat(inputBytes).isGreaterThan(4 * maxHeap);
    System.out.printf("large model int8: %d input bytes, %d output bytes, peak heap %d MiB of %d MiB, %s s%n",
        inputBytes, Files.size(outDir.resolve("model.onnx.data")), peakHeap >> 20, maxHeap >> 20,
        text(output, "seconds="));
    // int8 codes are 1/4 of the fp32 bytes, plus per layer K float scales and K int8 zero points
    // (1 KiB or more, so in the data file too); every size is a multiple of 4 KiB, so no padding.
    assertThat(Files.size(outDir.resolve("model.onnx.data"))).isEqualTo(inputBytes / 4 + LAYERS * (4L * K + K));
    assertThat(Files.size(out)).isLessThan(1 << 20);

    float[] x = OnnxGraphBuilder.randomFloats(7, K, 1f);
    float[] exact = x;
    float[] decoded = x;
    try (OnnxExternalData original = OnnxExternalData.open(model); OnnxExternalData q = OnnxExternalData.open(out)) {
      for (int l = 0; l < LAYERS; l++) {
        MemorySegment w = ExternalDataModels.bytes(original, "W" + l);
        MemorySegment codes = ExternalDataModels.bytes(q, "W" + l + "_quantized");
        float[] scales = ExternalDataModels.bytes(q, "W" + l + "_scale").toArray(LE_FLOAT);
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
    deleteTree(outDir);

    quantizesTheSameModelToInt4GroupsOf32(model, inputBytes, x, exact);
  }

  /**
   * The same 2.4 GB input to int4 in groups of 32 along K (blocked DequantizeLinear): codes are
   * packed two per byte straight into the data file, one piece at a time.
   */
  private void quantizesTheSameModelToInt4GroupsOf32(Path model, long inputBytes, float[] x, float[] exact)
      throws Exception {
    Path outDir = Files.createDirectory(dir.resolve("out4"));
    Path out = outDir.resolve("model.onnx");
    String output = quantizeInChild(model, out, "int4g32");
    long peakHeap = value(output, "peakHeap=");
    long maxHeap = value(output, "maxHeap=");
    long outputBytes = Files.size(outDir.resolve("model.onnx.data"));
    System.out.printf("large model int4 g32: %d output bytes, peak heap %d MiB of %d MiB, %s s%n", outputBytes,
        peakHeap >> 20, maxHeap >> 20, text(output, "seconds="));
    // Per layer: K·K/2 code bytes, K/32·K float scales, K/32·K packed zero points (all 4 KiB-aligned).
    long perLayer = (long) K * K / 2 + (long) K / 32 * K * 4 + (long) K / 32 * K / 2;
    // Each of those is a multiple of 4 KiB: no padding. 5.125 bits per weight, 0.16 of the fp32 bytes.
    assertThat(outputBytes).isEqualTo(LAYERS * perLayer);
    assertThat(outputBytes).isLessThan(inputBytes / 6);
    assertThat(Files.size(out)).isLessThan(1 << 20);

    float[] decoded = x;
    try (OnnxExternalData original = OnnxExternalData.open(model); OnnxExternalData q = OnnxExternalData.open(out)) {
      for (int l = 0; l < LAYERS; l++) {
        MemorySegment w = ExternalDataModels.bytes(original, "W" + l);
        MemorySegment codes = ExternalDataModels.bytes(q, "W" + l + "_quantized");
        MemorySegment scales = ExternalDataModels.bytes(q, "W" + l + "_scale");
        assertThat(scales.byteSize()).isEqualTo((long) K / 32 * K * 4);
        for (long row : new long[] {0, 1234, K - 1}) {
          for (int c = 0; c < K; c++) {
            long i = row * K + c;
            float v = w.get(LE_FLOAT, 4 * i);
            float scale = scales.get(LE_FLOAT, 4 * ((row / 32) * K + c));
            float dq = int4(codes, i) * scale;
            if (Math.abs(dq - v) > scale / 2 * 1.0001) {
              throw new AssertionError("W" + l + "[" + row + "," + c + "] = " + v + " decodes to " + dq);
            }
          }
        }
        decoded = rowTimesInt4(decoded, codes, scales);
      }
    }
    try (OrtRunner ort = OrtRunner.unfused(out)) {
      float[] y = ort.run("y", "x", x, 1, K);
      assertThat(ExternalDataQuantizerTest.maxRelativeError(decoded, y)).isLessThan(1e-4);
      double cos = cosine(exact, y);
      System.out.printf("large model int4 g32: cosine to the fp32 chain %.5f%n", cos);
      // Nine int4 layers in a row: each adds about 7% relative noise (uniform weights, step = max/7).
      assertThat(cos).isGreaterThan(0.95);
    }
  }

  private static final ValueLayout.OfFloat LE_FLOAT =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /** The signed 4-bit code of element i: element 2j in the low nibble of byte j. */
  private static int int4(MemorySegment codes, long i) {
    int b = codes.get(ValueLayout.JAVA_BYTE, i / 2);
    int nibble = (i & 1) == 0 ? b & 0xF : (b >> 4) & 0xF;
    return nibble >= 8 ? nibble - 16 : nibble;
  }

  private static float[] rowTimesInt4(float[] x, MemorySegment codes, MemorySegment scales) {
    double[] acc = new double[K];
    float[] scale = new float[K];
    for (int i = 0; i < K; i++) {
      if (i % 32 == 0) {
        MemorySegment.copy(scales, LE_FLOAT, (long) (i / 32) * K * 4, scale, 0, K);
      }
      double xi = x[i];
      for (int j = 0; j < K; j++) {
        acc[j] += xi * (int4(codes, (long) i * K + j) * scale[j]);
      }
    }
    float[] y = new float[K];
    for (int j = 0; j < K; j++) {
      y[j] = (float) acc[j];
    }
    return y;
  }

  /** Runs QuantizeExternalMain in a JVM with a 512 MiB heap; returns its output. */
  private String quantizeInChild(Path model, Path out, String variant) throws Exception {
    Path log = dir.resolve("child-" + variant + ".log");
    Path argfile = dir.resolve("child.args");
    Files.writeString(argfile, "-cp \"" + System.getProperty("java.class.path").replace("\\", "\\\\") + "\"");
    Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Xmx512m", "-XX:+UseSerialGC", "--add-modules", "jdk.incubator.vector", "@" + argfile,
        QuantizeExternalMain.class.getName(), model.toString(), out.toString(), variant)
        .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    boolean finished = child.waitFor(4, TimeUnit.MINUTES);
    if (!finished) {
      child.destroyForcibly().waitFor();
    }
    String output = Files.readString(log);
    assertThat(finished).as("child finished; output:\n%s", output).isTrue();
    assertThat(output).doesNotContain("OutOfMemoryError");
    assertThat(child.exitValue()).as("child exit; output:\n%s", output).isZero();
    return output;
  }

  private static void deleteTree(Path root) throws Exception {
    try (Stream<Path> files = Files.walk(root)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  private static String text(String output, String key) {
    return output.lines().filter(l -> l.startsWith(key)).map(l -> l.substring(key.length())).findFirst().orElse("?");
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
