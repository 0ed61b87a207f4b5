package dev.modelpress.format.npy;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.modelpress.format.FormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Hostile bytes given to the npz reader (a zip of npy arrays) with a 1 MiB budget, then to the
 * data-set summary: success or a {@link FormatException}, nothing else; a deflate bomb must stop
 * at the budget (docs/hardening.md).
 */
class NpzReaderFuzzTest {

  static final long BUDGET = 1 << 20;

  @FuzzTest(maxDuration = "20s")
  void readsAndSummarizesOrRejectsWithFormatException(byte[] bytes) throws IOException {
    Path file = Files.createTempFile("fuzz", ".npz");
    try {
      Files.write(file, bytes);
      List<NdArray> arrays = NpzReader.read(file, BUDGET);
      long total = 0;
      for (NdArray a : arrays) {
        if (!NdArrays.isSafeName(a.name())) {
          throw new AssertionError("unsafe array name accepted: " + a.name());
        }
        total += a.data().remaining();
      }
      if (total > BUDGET) {
        throw new AssertionError("read " + total + " bytes, over the budget of " + BUDGET);
      }
      NpzReader.summarize(arrays);
    } catch (FormatException expected) {
      // A precise refusal is the only acceptable failure.
    } finally {
      Files.deleteIfExists(file);
    }
  }
}
