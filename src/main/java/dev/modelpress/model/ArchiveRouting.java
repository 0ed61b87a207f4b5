package dev.modelpress.model;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.Locale;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * Which reader an uploaded {@code .zip}/{@code .tar} goes to: an archive with an entry ending in
 * {@code .onnx} is an ONNX model with external data, any other a sharded safetensors checkpoint.
 * Only entry names are read (the zip's central directory, the tar's headers); each reader then
 * validates the archive fully with its own limits, so a damaged archive is routed to the
 * safetensors reader, which reports it.
 */
final class ArchiveRouting {

  /** Headers looked at in a tar before giving up on finding an {@code .onnx} entry. */
  private static final int MAX_TAR_HEADERS = 100_000;

  private ArchiveRouting() {}

  static boolean holdsOnnx(Path archive) {
    try {
      return isZip(archive) ? zipHoldsOnnx(archive) : tarHoldsOnnx(archive);
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  private static boolean isZip(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      byte[] magic = in.readNBytes(2);
      return magic.length == 2 && magic[0] == 'P' && magic[1] == 'K';
    }
  }

  private static boolean zipHoldsOnnx(Path file) throws IOException {
    try (ZipFile zip = new ZipFile(file.toFile())) {
      Enumeration<? extends ZipEntry> entries = zip.entries();
      while (entries.hasMoreElements()) {
        if (isOnnx(entries.nextElement().getName())) {
          return true;
        }
      }
    }
    return false;
  }

  private static boolean tarHoldsOnnx(Path file) throws IOException {
    try (var channel = Files.newByteChannel(file)) {
      long size = channel.size();
      long at = 0;
      java.nio.ByteBuffer header = java.nio.ByteBuffer.allocate(512);
      for (int i = 0; i < MAX_TAR_HEADERS && at + 512 <= size; i++) {
        header.clear();
        channel.position(at);
        while (header.hasRemaining() && channel.read(header) > 0) {
          // fill the block
        }
        byte[] h = header.array();
        if (h[0] == 0) {
          return false; // end-of-archive block
        }
        String name = cString(h, 0, 100);
        String prefix = cString(h, 345, 155);
        if (isOnnx(prefix.isEmpty() ? name : prefix + "/" + name)) {
          return true;
        }
        long length = Long.parseLong(cString(h, 124, 12).trim().isEmpty() ? "0" : cString(h, 124, 12).trim(), 8);
        at += 512 + (length + 511) / 512 * 512;
      }
    }
    return false;
  }

  private static boolean isOnnx(String name) {
    return name.toLowerCase(Locale.ROOT).endsWith(".onnx");
  }

  private static String cString(byte[] b, int off, int len) {
    int end = off;
    while (end < off + len && b[end] != 0) {
      end++;
    }
    return new String(b, off, end - off, StandardCharsets.US_ASCII);
  }
}
