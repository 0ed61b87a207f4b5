package dev.modelpress.format.npy;

import static dev.modelpress.format.npy.NpyTestFiles.fixture;
import static dev.modelpress.format.npy.NpyTestFiles.npy;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.FormatException;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NpzReaderTest {

  private static final long MB = 1 << 20;
  private static final String TINY = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";

  @TempDir Path dir;

  @Test
  void readsStoredArchiveWrittenByNpSavez() throws Exception {
    List<NdArray> arrays = NpzReader.read(fixture("savez.npz"), MB);
    assertThat(arrays).extracting(NdArray::name).containsExactly("inputs", "labels");
    NdArray inputs = arrays.get(0);
    assertThat(inputs.dtype()).isEqualTo(DType.FLOAT32);
    assertThat(inputs.shape()).containsExactly(4, 3);
    float[] x = new float[12];
    inputs.data().asFloatBuffer().get(x);
    assertThat(x[1]).isEqualTo(0.25f);
    assertThat(x[11]).isEqualTo(2.75f);
    long[] labels = new long[4];
    arrays.get(1).data().asLongBuffer().get(labels);
    assertThat(labels).containsExactly(2, 0, 1, 2);
  }

  @Test
  void readsDeflatedArchiveWrittenByNpSavezCompressed() throws Exception {
    List<NdArray> arrays = NpzReader.read(fixture("savez_compressed.npz"), MB);
    NdArray x = arrays.get(0);
    assertThat(x.name()).isEqualTo("x");
    assertThat(x.shape()).containsExactly(200, 10);
    // np.tile(np.arange(10), 200): row r, column c holds c.
    assertThat(x.data().getFloat(4 * (137 * 10 + 7))).isEqualTo(7f);
    NdArray labels = arrays.get(1);
    assertThat(labels.dtype()).isEqualTo(DType.INT64);
    assertThat(labels.data().getLong(8 * 199)).isEqualTo(199 % 3);
  }

  @Test
  void rejectsPathTraversalEntryNames() throws Exception {
    Path p = zip(false, "../evil.npy", npy(TINY, 8));
    assertRejected(p, "npz entry '../evil.npy'", "unsafe name");
    assertRejected(zip(false, "/abs.npy", npy(TINY, 8)), "'/abs.npy'", "unsafe name");
    assertRejected(zip(false, "a\\b.npy", npy(TINY, 8)), "unsafe name");
    assertRejected(zip(false, ".npy", npy(TINY, 8)), "'.npy'", "unsafe name");
  }

  @Test
  void rejectsEntriesThatAreNotNpy() throws Exception {
    assertRejected(zip(false, "notes.txt", "hello".getBytes()), "'notes.txt' is not a .npy array");
  }

  @Test
  void rejectsDuplicateEntryNames() throws Exception {
    // ZipOutputStream refuses duplicates, so write two names and make them equal afterwards.
    Path p = dir.resolve("dup.npz");
    try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(p))) {
      for (String name : new String[] {"a.npy", "b.npy"}) {
        z.putNextEntry(new ZipEntry(name));
        z.write(npy(TINY, 8));
        z.closeEntry();
      }
    }
    byte[] bytes = Files.readAllBytes(p);
    byte[] b = "b.npy".getBytes(StandardCharsets.US_ASCII);
    for (int i = 0; i + b.length <= bytes.length; i++) {
      if (Arrays.equals(bytes, i, i + b.length, b, 0, b.length)) {
        bytes[i] = 'a';
      }
    }
    Files.write(p, bytes);
    assertRejected(p, "npz entry 'a.npy' appears more than once");
  }

  @Test
  void deflateBombFailsFastWithoutInflatingIt() throws Exception {
    // A 40-byte array followed by 200 MB of zeros, which deflate to about 200 KB.
    Path p = dir.resolve("bomb.npz");
    try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(p))) {
      z.setLevel(Deflater.BEST_SPEED);
      z.putNextEntry(new ZipEntry("x.npy"));
      z.write(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }", 40));
      byte[] zeros = new byte[1 << 20];
      for (int i = 0; i < 200; i++) {
        z.write(zeros);
      }
      z.closeEntry();
    }
    assertThat(Files.size(p)).isLessThan(2 * MB);

    var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    long before = threads.getCurrentThreadAllocatedBytes();
    long start = System.nanoTime();
    assertRejected(p, "npz entry 'x.npy' holds more bytes than its npy header declares");
    assertThat(threads.getCurrentThreadAllocatedBytes() - before).isLessThan(8 * MB);
    assertThat((System.nanoTime() - start) / 1_000_000).as("milliseconds").isLessThan(2_000);
  }

  @Test
  void rejectsArraysDeclaringMoreThanTheBudgetBeforeReadingThem() throws Exception {
    // 200 MB declared and actually present as zeros; the budget is 1 MB.
    Path p = dir.resolve("big.npz");
    try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(p))) {
      z.setLevel(Deflater.BEST_SPEED);
      z.putNextEntry(new ZipEntry("x.npy"));
      z.write(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (50000000,), }", 0));
      writeZeros(z, 200_000_000);
      z.closeEntry();
    }
    assertRejected(p, "array 'x'", "declares 200000000 bytes, more than the 1048576 bytes allowed");
  }

  @Test
  void budgetCoversAllArraysTogether() throws Exception {
    // Two arrays of 600 KB each: each fits in 1 MB, both together do not.
    String dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (600000,), }";
    Path p = dir.resolve("two.npz");
    try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(p))) {
      for (String name : new String[] {"a.npy", "b.npy"}) {
        z.putNextEntry(new ZipEntry(name));
        z.write(npy(dict, 600_000));
        z.closeEntry();
      }
    }
    assertThat(NpzReader.read(p, 2 * MB)).hasSize(2);
    assertRejected(p, "array 'b'", "declares 600000 bytes, more than the 448576 bytes allowed");
  }

  @Test
  void rejectsRandomBytes() throws Exception {
    byte[] noise = new byte[4096];
    new Random(42).nextBytes(noise);
    Path p = dir.resolve("noise.npz");
    Files.write(p, noise);
    assertRejected(p, "not a valid npz file");
  }

  @Test
  void rejectsZeroLengthFile() throws Exception {
    Path p = dir.resolve("empty.npz");
    Files.write(p, new byte[0]);
    assertRejected(p, "not a valid npz file");
  }

  @Test
  void rejectsTruncatedArchive() throws Exception {
    byte[] whole = Files.readAllBytes(fixture("savez_compressed.npz"));
    Path p = dir.resolve("cut.npz");
    Files.write(p, Arrays.copyOf(whole, whole.length / 2));
    assertRejected(p, "not a valid npz file");
  }

  @Test
  void rejectsEntryWhoseArrayIsTruncated() throws Exception {
    Path p =
        zip(true, "w.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 40));
    assertRejected(p, "array 'w'", "declares 48 data bytes but only 40 are present");
  }

  @Test
  void rejectsCorruptCompressedData() throws Exception {
    Path p =
        zip(
            true,
            "w.npy",
            npy("{'descr': '<f4', 'fortran_order': False, 'shape': (256,), }", 1024));
    byte[] bytes = Files.readAllBytes(p);
    // Overwrite the middle of the deflate stream, keeping the zip directory intact.
    for (int i = 120; i < 140; i++) {
      bytes[i] = (byte) 0xff;
    }
    Files.write(p, bytes);
    assertRejected(p, "npz entry 'w.npy' is damaged or truncated");
  }

  @Test
  void rejectsStoredEntryWithFlippedDataByte() throws Exception {
    byte[] content = npy("{'descr': '|u1', 'fortran_order': False, 'shape': (64,), }", 64);
    Path p = zip(false, "w.npy", content);
    byte[] bytes = Files.readAllBytes(p);
    // Local header (30 bytes) and name (5), then the npy header, then data.
    int firstDataByte = 30 + 5 + content.length - 64;
    bytes[firstDataByte + 10] ^= 1;
    Files.write(p, bytes);
    assertRejected(p, "npz entry 'w.npy' is corrupt (CRC mismatch)");
  }

  @Test
  void rejectsArrayErrorsNamingTheEntry() throws Exception {
    Path p =
        zip(
            false,
            "images.npy",
            npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8));
    assertRejected(p, "array 'images'", "big-endian");
  }

  @Test
  void rejectsAnArchiveWhoseCentralDirectoryPointsPastTheEndAsDamaged() throws Exception {
    // Found by NpzReaderFuzzTest: ZipFile threw a bare EOFException (an I/O error, so a 500).
    Path p = dir.resolve("crash.npz");
    try (var in = NpzReaderTest.class.getResourceAsStream("NpzReaderFuzzTestInputs/"
        + "readsAndSummarizesOrRejectsWithFormatException/crash-79c20f8f-central-directory-past-end")) {
      Files.copy(in, p);
    }
    assertRejected(p, "not a valid npz file: it cannot be read as a zip archive");
  }

  private void assertRejected(Path p, String... fragments) {
    assertThatThrownBy(() -> NpzReader.read(p, MB))
        .isInstanceOf(FormatException.class)
        .message()
        .contains(fragments);
  }

  private Path zip(boolean deflated, String name, byte[] content) throws IOException {
    Path p = Files.createTempFile(dir, "t", ".npz");
    try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(p))) {
      ZipEntry e = new ZipEntry(name);
      if (!deflated) {
        // A stored entry needs its size and CRC up front.
        CRC32 crc = new CRC32();
        crc.update(content);
        e.setMethod(ZipEntry.STORED);
        e.setSize(content.length);
        e.setCrc(crc.getValue());
      }
      z.putNextEntry(e);
      z.write(content);
      z.closeEntry();
    }
    return p;
  }

  private static void writeZeros(OutputStream out, long count) throws IOException {
    byte[] zeros = new byte[1 << 20];
    for (long left = count; left > 0; left -= zeros.length) {
      out.write(zeros, 0, (int) Math.min(zeros.length, left));
    }
  }
}
