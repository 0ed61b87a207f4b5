package dev.modelpress.format.onnx;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Hostile bytes given to the ONNX reader: it either reads and summarizes them or refuses them with
 * a {@link FormatException}; any other exception, an out-of-memory error or a hang is a finding.
 *
 * <p>A normal build runs the seeds and every past finding under {@code OnnxReaderFuzzTestInputs/}
 * (regression mode); {@code JAZZER_FUZZ=1} makes it a coverage-guided run (docs/hardening.md).
 */
class OnnxReaderFuzzTest {

  @FuzzTest(maxDuration = "20s")
  void readsAndSummarizesOrRejectsWithFormatException(byte[] bytes) throws IOException {
    Path file = Files.createTempFile("fuzz", ".onnx");
    try {
      Files.write(file, bytes);
      ModelProto model = OnnxModels.read(file);
      ModelSummary summary = OnnxModels.summarize(model);
      if (summary.parameterCount() < 0) {
        throw new AssertionError("negative parameter count " + summary.parameterCount());
      }
    } catch (FormatException expected) {
      // A precise refusal is the only acceptable failure.
    } finally {
      Files.deleteIfExists(file);
    }
  }
}
