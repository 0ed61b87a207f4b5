package dev.modelpress.format.npy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NpzWriterTest {

  @TempDir Path dir;

  private final NdArray inputs = floats("inputs", new long[] {2, 3}, 1f, 2f, 3f, 4f, 5f, -6f);
  private final NdArray labels = longs("labels", 1, 0);

  @Test
  void storedArchiveReadsBackAndUsesStoredEntries() throws Exception {
    Path p = dir.resolve("data.npz");
    NpzWriter.write(p, List.of(inputs, labels), false);

    try (ZipFile zip = new ZipFile(p.toFile())) {
      assertThat(Collections.list(zip.entries()))
          .extracting(ZipEntry::getName, ZipEntry::getMethod)
          .containsExactly(
              tuple("inputs.npy", ZipEntry.STORED), tuple("labels.npy", ZipEntry.STORED));
    }
    assertRoundTrip(p);
  }

  @Test
  void compressedArchiveReadsBackAndIsSmallerForRepetitiveData() throws Exception {
    float[] repetitive = new float[10_000];
    NdArray big = floats("x", new long[] {10_000}, repetitive);
    Path stored = dir.resolve("s.npz");
    Path deflated = dir.resolve("d.npz");
    NpzWriter.write(stored, List.of(big, inputs, labels), false);
    NpzWriter.write(deflated, List.of(big, inputs, labels), true);
    assertThat(Files.size(deflated)).isLessThan(Files.size(stored) / 10);
    try (ZipFile zip = new ZipFile(deflated.toFile())) {
      assertThat(zip.getEntry("x.npy").getMethod()).isEqualTo(ZipEntry.DEFLATED);
    }
    List<NdArray> back = NpzReader.read(deflated, 1 << 20);
    assertThat(back.get(0).shape()).containsExactly(10_000);
    assertThat(back.get(1).data().getFloat(20)).isEqualTo(-6f);
  }

  @Test
  void refusesUnsafeOrDuplicateNamesWithoutTouchingTheTarget() throws Exception {
    Path p = dir.resolve("data.npz");
    Files.writeString(p, "previous");
    assertThatThrownBy(() -> NpzWriter.write(p, List.of(floats("../x", new long[] {1}, 1f)), true))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'../x' is not safe");
    assertThatThrownBy(() -> NpzWriter.write(p, List.of(labels, labels), true))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'labels' appears twice");
    assertThat(Files.readString(p)).isEqualTo("previous");
    try (var files = Files.list(dir)) {
      assertThat(files).containsExactly(p);
    }
  }

  private void assertRoundTrip(Path p) throws Exception {
    List<NdArray> back = NpzReader.read(p, 1 << 20);
    assertThat(back).extracting(NdArray::name).containsExactly("inputs", "labels");
    assertThat(back.get(0).dtype()).isEqualTo(DType.FLOAT32);
    assertThat(back.get(0).shape()).containsExactly(2, 3);
    assertThat(back.get(0).data()).isEqualTo(inputs.data());
    assertThat(back.get(1).data().getLong(0)).isEqualTo(1);
  }

  static NdArray floats(String name, long[] shape, float... values) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      b.putFloat(v);
    }
    return new NdArray(name, DType.FLOAT32, shape, b.flip());
  }

  static NdArray longs(String name, long... values) {
    ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (long v : values) {
      b.putLong(v);
    }
    return new NdArray(name, DType.INT64, new long[] {values.length}, b.flip());
  }
}
