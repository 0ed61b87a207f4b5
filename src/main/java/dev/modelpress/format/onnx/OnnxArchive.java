package dev.modelpress.format.onnx;

import dev.modelpress.format.FormatException;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipInputStream;

/**
 * An ONNX model with external data delivered as one {@code .zip} or {@code .tar} archive: exactly
 * one {@code .onnx} file plus the data files its tensors name, unpacked by streaming into an empty
 * directory under {@link Limits}.
 *
 * <p>Every entry is checked before a byte of it is written: a relative name without {@code ..},
 * drive letters, backslashes or NUL; no duplicate names; regular files and directories only (tar
 * symbolic and hard links, devices and FIFOs are refused; zip entries are always written as plain
 * files, so a zip "symlink" can only become a small regular file). Bytes are counted as they are
 * written, so a zip bomb stops at the limit, not after filling the disk. The unpacked model is then
 * checked by {@link OnnxExternalData#open}, whose rules keep external locations inside the directory.
 */
public final class OnnxArchive {

  /** The archive kinds recognised by their magic bytes. */
  public enum Kind {
    ZIP("zip"),
    TAR("tar");

    private final String extension;

    Kind(String extension) {
      this.extension = extension;
    }

    /** The file extension used for a stored archive of this kind. */
    public String extension() {
      return extension;
    }
  }

  /**
   * Bounds on what an archive may unpack to.
   *
   * @param maxEntries the most entries (files and directories)
   * @param maxBytes the most bytes all files together may hold after unpacking
   * @param maxRatio the most unpacked bytes per archive byte (beyond the first MiB): real weights
   *     barely compress, a zip bomb expands hundreds of times
   */
  public record Limits(int maxEntries, long maxBytes, int maxRatio) {

    /** 256 entries, the given byte budget, and 100× expansion. */
    public static Limits of(long maxBytes) {
      return new Limits(256, maxBytes, 100);
    }
  }

  /** The archive's unpacking broke a size or count limit: the client should send something smaller. */
  public static final class LimitException extends FormatException {
    LimitException(String message) {
      super(message);
    }
  }

  private OnnxArchive() {}

  /** The archive kind by magic bytes ({@code PK\3\4} for zip, {@code ustar} at byte 257 for tar), or {@code null}. */
  public static Kind detect(Path file) throws IOException {
    byte[] head = new byte[512];
    int n;
    try (InputStream in = Files.newInputStream(file)) {
      n = in.readNBytes(head, 0, head.length);
    }
    if (n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) {
      return Kind.ZIP;
    }
    if (n == 512 && new String(head, 257, 5, StandardCharsets.US_ASCII).equals("ustar")) {
      return Kind.TAR;
    }
    return null;
  }

  /**
   * Unpacks {@code archive} into {@code dir} (which must exist and be empty) and returns the path of
   * its one {@code .onnx} file. On failure, what was written stays in {@code dir} for the caller to
   * delete with it.
   *
   * @throws LimitException too many entries, too many bytes, or too high an expansion ratio
   * @throws FormatException not a readable archive, an unsafe or duplicate entry name, a link or
   *     special file, or not exactly one {@code .onnx} file
   */
  public static Path unpack(Path archive, Path dir, Limits limits) throws FormatException, IOException {
    Kind kind = detect(archive);
    if (kind == null) {
      throw new FormatException("not a zip or tar archive");
    }
    long budget = Math.min(limits.maxBytes(), Math.max(0, Files.size(archive)) * (long) limits.maxRatio() + (1L << 20));
    Unpacker u = new Unpacker(dir, limits, budget, limits.maxBytes());
    try (InputStream in = new BufferedInputStream(Files.newInputStream(archive), 1 << 16)) {
      if (kind == Kind.ZIP) {
        u.zip(in);
      } else {
        u.tar(in);
      }
    } catch (java.io.EOFException e) {
      throw new FormatException("the " + kind.extension() + " archive is truncated", e);
    }
    List<String> models = u.files.stream().filter(f -> f.toLowerCase(java.util.Locale.ROOT).endsWith(".onnx")).toList();
    if (models.size() != 1) {
      throw new FormatException("the archive must hold exactly one .onnx file, it holds " + models.size()
          + (models.isEmpty() ? "" : " (" + String.join(", ", models) + ")"));
    }
    return dir.resolve(models.getFirst());
  }

  private static final class Unpacker {
    final Path dir;
    final Limits limits;
    final long budget;
    final long maxBytes;
    final List<String> files = new ArrayList<>();
    final Set<String> names = new HashSet<>();
    long written;
    int entries;

    Unpacker(Path dir, Limits limits, long budget, long maxBytes) {
      this.dir = dir;
      this.limits = limits;
      this.budget = budget;
      this.maxBytes = maxBytes;
    }

    void zip(InputStream raw) throws FormatException, IOException {
      try (ZipInputStream in = new ZipInputStream(raw)) {
        ZipEntry e;
        while ((e = in.getNextEntry()) != null) {
          entry(e.getName(), e.isDirectory(), in);
        }
      } catch (ZipException e) {
        throw new FormatException("the zip archive is damaged: " + e.getMessage(), e);
      }
    }

    void tar(InputStream in) throws FormatException, IOException {
      byte[] header = new byte[512];
      while (true) {
        int n = in.readNBytes(header, 0, 512);
        if (n == 0) {
          return;
        }
        if (n < 512) {
          throw new FormatException("the tar archive is truncated inside a header");
        }
        if (allZero(header)) {
          return;
        }
        checkChecksum(header);
        String name = cString(header, 0, 100);
        String prefix = new String(header, 257, 6, StandardCharsets.US_ASCII).startsWith("ustar")
            ? cString(header, 345, 155) : "";
        if (!prefix.isEmpty()) {
          name = prefix + "/" + name;
        }
        long size = octal(header, 124, 12, name);
        char type = (char) header[156];
        long unread = size;
        switch (type) {
          case '0', '\0', '7' -> {
            Bounded data = new Bounded(in, size);
            entry(name, false, data);
            unread = data.left;
          }
          case '5' -> entry(name, true, InputStream.nullInputStream());
          case '1', '2' -> throw new FormatException("archive entry '" + name + "' is a "
              + (type == '1' ? "hard" : "symbolic") + " link; only regular files and directories are accepted");
          case 'x', 'g', 'L', 'K' -> throw new FormatException("archive entry '" + name + "' uses a pax or GNU "
              + "extended header (long names or attributes), which is not supported; use names under 100 bytes");
          default -> throw new FormatException("archive entry '" + name + "' has type '" + type
              + "' (device, FIFO or other special file); only regular files and directories are accepted");
        }
        skipFully(in, unread + (512 - size % 512) % 512);
      }
    }

    /** Checks the name, then writes the entry's bytes (counting them) or creates the directory. */
    void entry(String name, boolean directory, InputStream data) throws FormatException, IOException {
      if (++entries > limits.maxEntries()) {
        throw new LimitException("the archive holds more than " + limits.maxEntries() + " entries");
      }
      String clean = safeName(name);
      if (clean.isEmpty()) {
        return;
      }
      if (!names.add(clean)) {
        throw new FormatException("archive entry '" + name + "' appears twice");
      }
      Path target = dir.resolve(clean).normalize();
      if (!target.startsWith(dir)) {
        throw new FormatException("archive entry '" + name + "' would be written outside the archive's directory");
      }
      if (directory) {
        Files.createDirectories(target);
        return;
      }
      Files.createDirectories(target.getParent());
      byte[] buf = new byte[1 << 16];
      try (OutputStream out = Files.newOutputStream(target, StandardOpenOption.CREATE_NEW)) {
        int n;
        while ((n = data.read(buf)) > 0) {
          written += n;
          if (written > budget) {
            throw new LimitException(written > maxBytes || budget == maxBytes
                ? "the archive unpacks to more than " + maxBytes + " bytes"
                : "the archive expands more than " + limits.maxRatio() + " times its own size (at entry '" + name
                    + "'); a model's weights barely compress, so this looks like a zip bomb");
          }
          out.write(buf, 0, n);
        }
      }
      files.add(clean);
    }

    /** The entry name with '/' separators and no leading './', or a problem naming it. */
    static String safeName(String name) throws FormatException {
      if (name.indexOf('\0') >= 0) {
        throw new FormatException("an archive entry name contains a NUL character");
      }
      if (name.indexOf('\\') >= 0) {
        throw new FormatException("archive entry '" + name + "' contains a backslash; use '/' separators");
      }
      if (name.startsWith("/") || (name.length() >= 2 && name.charAt(1) == ':')) {
        throw new FormatException("archive entry '" + name + "' has an absolute path; entries must be relative");
      }
      List<String> parts = new ArrayList<>();
      for (String part : name.split("/")) {
        if (part.equals("..")) {
          throw new FormatException("archive entry '" + name + "' has a '..' component; entries must stay inside the archive");
        }
        if (!part.isEmpty() && !part.equals(".")) {
          parts.add(part);
        }
      }
      return String.join("/", parts);
    }
  }

  /** The next {@code size} bytes of a tar stream; {@code left} says how many the consumer did not read. */
  private static final class Bounded extends InputStream {
    private final InputStream in;
    long left;

    Bounded(InputStream in, long size) {
      this.in = in;
      this.left = size;
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (left <= 0) {
        return -1;
      }
      int n = in.read(b, off, (int) Math.min(len, left));
      if (n < 0) {
        throw new java.io.EOFException("the tar archive is truncated inside an entry");
      }
      left -= n;
      return n;
    }
  }

  private static void skipFully(InputStream in, long n) throws IOException {
    while (n > 0) {
      long s = in.skip(n);
      if (s <= 0) {
        if (in.read() < 0) {
          throw new java.io.EOFException("the tar archive is truncated");
        }
        s = 1;
      }
      n -= s;
    }
  }

  private static boolean allZero(byte[] b) {
    for (byte x : b) {
      if (x != 0) {
        return false;
      }
    }
    return true;
  }

  private static void checkChecksum(byte[] h) throws FormatException {
    long stored = octal(h, 148, 8, "header");
    long sum = 0;
    for (int i = 0; i < 512; i++) {
      sum += i >= 148 && i < 156 ? ' ' : h[i] & 0xff;
    }
    if (sum != stored) {
      throw new FormatException("not a valid tar archive: a header checksum does not match");
    }
  }

  private static String cString(byte[] b, int off, int len) {
    int end = off;
    while (end < off + len && b[end] != 0) {
      end++;
    }
    return new String(b, off, end - off, StandardCharsets.UTF_8);
  }

  private static long octal(byte[] b, int off, int len, String what) throws FormatException {
    long v = 0;
    boolean any = false;
    for (int i = off; i < off + len; i++) {
      int c = b[i];
      if (c == 0 || c == ' ') {
        if (any) {
          break;
        }
        continue;
      }
      if (c < '0' || c > '7') {
        throw new FormatException("not a valid tar archive: a size or checksum field of '" + what + "' is not octal");
      }
      any = true;
      v = v * 8 + (c - '0');
      if (v > (1L << 50)) {
        throw new FormatException("not a valid tar archive: entry '" + what + "' declares an impossible size");
      }
    }
    return v;
  }
}
