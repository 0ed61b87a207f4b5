package dev.modelpress.model;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.archive.ArchiveReader;
import dev.modelpress.format.safetensors.SafetensorsShards;
import dev.modelpress.system.ApiProblem;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Validates an uploaded {@code .zip}/{@code .tar} holding a sharded safetensors checkpoint: it is
 * extracted into a scratch directory beside the spooled upload, checked by {@link
 * SafetensorsShards}, summarized, and the scratch directory is deleted whatever happens. The
 * archive itself is what gets stored; jobs extract it again.
 */
final class SafetensorsShardUpload {

  private SafetensorsShardUpload() {}

  static ModelSummary inspect(Path archive, ArchiveReader.Limits limits) throws IOException {
    Path scratch = Files.createTempDirectory(archive.toAbsolutePath().getParent(), "safetensors-shards-");
    try {
      return SafetensorsShards.extract(archive, scratch, limits).summary();
    } catch (FormatException e) {
      throw new ApiProblem(ApiProblem.Kind.INVALID_MODEL, "sharded safetensors archive: " + e.getMessage());
    } finally {
      deleteTree(scratch);
    }
  }

  private static void deleteTree(Path dir) throws IOException {
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
