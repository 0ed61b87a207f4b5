package dev.modelpress.model;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.archive.ArchiveReader;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Which reader an uploaded {@code .zip}/{@code .tar} goes to: an archive with an entry ending in
 * {@code .onnx} is an ONNX model with external data, any other a sharded safetensors checkpoint.
 * Only entry names are read ({@link ArchiveReader#anyEntry}); each reader then validates the
 * archive fully with its own limits, so a damaged archive is routed to the safetensors reader, which
 * reports it.
 */
final class ArchiveRouting {

  private ArchiveRouting() {}

  static boolean holdsOnnx(Path archive) {
    try {
      return ArchiveReader.anyEntry(archive, name -> name.toLowerCase(Locale.ROOT).endsWith(".onnx"));
    } catch (IOException | FormatException | RuntimeException e) {
      return false;
    }
  }
}
