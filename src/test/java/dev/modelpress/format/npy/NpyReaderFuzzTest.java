package dev.modelpress.format.npy;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.modelpress.format.FormatException;
import java.io.ByteArrayInputStream;
import java.io.IOException;

/**
 * Hostile bytes given to the npy reader with a 1 MiB budget: it reads an array no larger than the
 * bytes present or refuses with a {@link FormatException}; nothing else (docs/hardening.md).
 */
class NpyReaderFuzzTest {

  static final long BUDGET = 1 << 20;

  @FuzzTest(maxDuration = "20s")
  void readsAnArrayOrRejectsWithFormatException(byte[] bytes) throws IOException {
    try {
      NdArray a = NpyReader.read("x", new ByteArrayInputStream(bytes), BUDGET);
      long elements = 1;
      for (long d : a.shape()) {
        elements *= d;
      }
      if (a.data().remaining() > bytes.length
          || a.data().remaining() != elements * a.dtype().size()) {
        throw new AssertionError(
            "array of " + a.data().remaining() + " bytes from a " + bytes.length + "-byte input");
      }
    } catch (FormatException expected) {
      // A precise refusal is the only acceptable failure.
    }
  }
}
