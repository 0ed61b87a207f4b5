package dev.modelpress.model;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.archive.ArchiveReader;
import dev.modelpress.format.onnx.OnnxArchive;
import dev.modelpress.format.onnx.OnnxExternalData;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.system.ApiProblem;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Checks an uploaded archive of an ONNX model with external data: unpacks it into a scratch
 * directory under the archive limits, validates the model and every external reference, summarizes
 * it, and deletes the scratch directory whatever happens.
 */
final class ModelArchives {

  private ModelArchives() {}

  /**
   * The summary of the archive's model.
   *
   * @throws ApiProblem 413 PAYLOAD_TOO_LARGE when unpacking breaks a limit, 422 INVALID_MODEL for an
   *     unsafe entry, a missing or misplaced data file, or an invalid model
   */
  static ModelSummary inspect(Path archive, Path scratch, ArchiveReader.Limits limits) throws IOException {
    Files.createDirectories(scratch);
    Path dir = Files.createTempDirectory(scratch, "unpack-");
    try {
      Path model = OnnxArchive.unpack(archive, dir, limits);
      try (OnnxExternalData data = OnnxExternalData.open(model)) {
        return OnnxModels.summarize(data.model());
      }
    } catch (ArchiveReader.LimitException e) {
      throw new ApiProblem(ApiProblem.Kind.PAYLOAD_TOO_LARGE, "archive: " + e.getMessage());
    } catch (FormatException e) {
      throw new ApiProblem(ApiProblem.Kind.INVALID_MODEL, "archive: " + e.getMessage());
    } finally {
      deleteTree(dir);
    }
  }

  /** Deletes a directory tree, deepest first. */
  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> {
        try {
          Files.deleteIfExists(p);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }
}
