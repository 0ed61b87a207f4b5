package dev.modelpress.format.safetensors;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Hostile bytes given to the safetensors reader: open, summarize, then touch every byte range of
 * every tensor; the only acceptable failure is a {@link FormatException}.
 *
 * <p>Seeds and past findings live under {@code SafetensorsReaderFuzzTestInputs/}
 * (docs/hardening.md).
 */
class SafetensorsReaderFuzzTest {

  @FuzzTest(maxDuration = "20s")
  void opensSummarizesAndReadsEveryTensorOrRejectsWithFormatException(byte[] bytes)
      throws IOException {
    Path file = Files.createTempFile("fuzz", ".safetensors");
    try {
      Files.write(file, bytes);
      try (SafetensorsFile st = SafetensorsFile.open(file)) {
        ModelSummary summary = st.summary();
        long total = 0;
        for (SafetensorsFile.Entry e : st.entries()) {
          MemorySegment data = st.tensorSegment(e.name());
          if (data.byteSize() != e.byteLength() || e.offset() + e.byteLength() > bytes.length) {
            throw new AssertionError("tensor " + e.name() + " maps outside the file");
          }
          if (data.byteSize() > 0) {
            data.get(ValueLayout.JAVA_BYTE, 0);
            data.get(ValueLayout.JAVA_BYTE, data.byteSize() - 1);
          }
          long[] chunked = new long[1];
          st.readChunks(e.name(), 4096, b -> chunked[0] += b.remaining());
          if (chunked[0] != e.byteLength()) {
            throw new AssertionError("chunks of " + e.name() + " sum to " + chunked[0]);
          }
          total += st.tensorData(e.name()).remaining();
        }
        if (total > bytes.length || summary.tensors().size() != st.entries().size()) {
          throw new AssertionError("tensors claim " + total + " bytes of a " + bytes.length + "-byte file");
        }
      }
    } catch (FormatException expected) {
      // A precise refusal is the only acceptable failure.
    } finally {
      Files.deleteIfExists(file);
    }
  }
}
