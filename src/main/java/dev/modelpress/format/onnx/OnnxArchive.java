package dev.modelpress.format.onnx;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.archive.ArchiveReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * An ONNX model with external data delivered as one {@code .zip} or {@code .tar} archive: exactly
 * one {@code .onnx} file plus the data files its tensors name, unpacked by streaming into an empty
 * directory, keeping the archive's subdirectories.
 *
 * <p>{@link ArchiveReader} checks every entry before a byte of it is written (names, links, entry
 * count) and counts bytes as they are written, so a zip bomb stops at the limit, not after filling
 * the disk. The unpacked model is then checked by {@link OnnxExternalData#open}, whose rules keep
 * external locations inside the directory.
 */
public final class OnnxArchive {

  private OnnxArchive() {}

  /** What an archive may unpack to: 256 entries, {@code maxBytes}, and 100× expansion. */
  public static ArchiveReader.Limits limits(long maxBytes) {
    return new ArchiveReader.Limits(256, maxBytes, 100);
  }

  /**
   * Unpacks {@code archive} into {@code dir} (which must exist and be empty) and returns the path of
   * its one {@code .onnx} file. On failure, what was written stays in {@code dir} for the caller to
   * delete with it.
   *
   * @throws ArchiveReader.LimitException too many entries, too many bytes, or too high an expansion ratio
   * @throws FormatException not a readable archive, an unsafe or duplicate entry name, a link or
   *     special file, or not exactly one {@code .onnx} file
   */
  public static Path unpack(Path archive, Path dir, ArchiveReader.Limits limits) throws FormatException, IOException {
    List<String> models = new ArrayList<>();
    ArchiveReader.read(archive, limits, entry -> {
      Path target = dir.resolve(entry.name()).normalize();
      if (!target.startsWith(dir)) {
        throw new FormatException("archive entry '" + entry.rawName() + "' would be written outside the archive's "
            + "directory");
      }
      if (entry.isDirectory()) {
        Files.createDirectories(target);
        return;
      }
      Files.createDirectories(target.getParent());
      entry.copyTo(target);
      if (entry.name().toLowerCase(Locale.ROOT).endsWith(".onnx")) {
        models.add(entry.name());
      }
    });
    if (models.size() != 1) {
      throw new FormatException("the archive must hold exactly one .onnx file, it holds " + models.size()
          + (models.isEmpty() ? "" : " (" + String.join(", ", models) + ")"));
    }
    return dir.resolve(models.getFirst());
  }
}
