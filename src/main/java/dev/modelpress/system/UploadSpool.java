package dev.modelpress.system;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import org.springframework.util.unit.DataSize;

/**
 * Streams an upload to a local spool file, counting bytes and computing SHA-256 on the way, and
 * stops as soon as the configured limit is passed so an oversized upload cannot fill the disk.
 * Readers that need random access (ONNX, safetensors, zip) then validate the spooled file before
 * anything reaches object storage or the database.
 */
public final class UploadSpool {

  private final Path dir;
  private final long maxBytes;

  public UploadSpool(Path dir, DataSize maxBytes) {
    this.dir = dir;
    this.maxBytes = maxBytes.toBytes();
  }

  /** The largest upload accepted, in bytes. */
  /** The spool directory (scratch space for uploads and what is unpacked from them). */
  public Path dir() {
    return dir;
  }

  public long maxBytes() {
    return maxBytes;
  }

  /**
   * Copies {@code in} to a new spool file.
   *
   * @throws ApiProblem PAYLOAD_TOO_LARGE once more than {@link #maxBytes()} bytes arrive; the
   *     partial file is deleted
   */
  public Spooled spool(InputStream in) throws IOException {
    Files.createDirectories(dir);
    Path file = Files.createTempFile(dir, "upload-", ".part");
    boolean ok = false;
    try (OutputStream out = Files.newOutputStream(file)) {
      MessageDigest sha256 = sha256();
      byte[] buffer = new byte[1 << 16];
      long total = 0;
      int n;
      while ((n = in.read(buffer)) > 0) {
        total += n;
        if (total > maxBytes) {
          throw tooLarge();
        }
        sha256.update(buffer, 0, n);
        out.write(buffer, 0, n);
      }
      ok = true;
      return new Spooled(file, total, HexFormat.of().formatHex(sha256.digest()));
    } finally {
      if (!ok) {
        Files.deleteIfExists(file);
      }
    }
  }

  /** The problem for a declared or actual size over the limit. */
  public ApiProblem tooLarge() {
    return new ApiProblem(ApiProblem.Kind.PAYLOAD_TOO_LARGE,
        "uploads are limited to " + maxBytes + " bytes (modelpress.uploads.max-bytes)");
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A spooled upload; closing deletes the file. */
  public record Spooled(Path file, long size, String sha256) implements AutoCloseable {
    @Override
    public void close() {
      try {
        Files.deleteIfExists(file);
      } catch (IOException ignored) {
        // The spool directory is scratch space; a leftover file is harmless.
      }
    }
  }
}
