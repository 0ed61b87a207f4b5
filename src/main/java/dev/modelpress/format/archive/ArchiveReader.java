package dev.modelpress.format.archive;

import dev.modelpress.format.FormatException;
import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * Reads an uploaded {@code .zip} or {@code .tar} archive entry by entry under {@link Limits}, trusting
 * nothing it declares. What to keep and where to write it is the caller's {@link Visitor}; the checks
 * are made here, once, for every archive upload.
 *
 * <p>Before a visitor sees an entry: the entry count is within the limit (a zip's central directory
 * is counted up front); the name is relative, with no {@code ..} component, drive letter, backslash
 * or NUL ({@code .} components and empty ones are dropped); no two entries share a name; a tar entry
 * is a regular file or a directory (hard and symbolic links, devices and FIFOs are refused; zip entries
 * are only ever read as plain files). Bytes are counted as an entry is {@link Entry#copyTo copied}, so a
 * zip bomb stops at the byte or expansion limit, not after filling the disk. Tar checksums are checked;
 * pax {@code path}/{@code size} and GNU long names are understood.
 */
public final class ArchiveReader {

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
   * Bounds on what an archive may hold.
   *
   * @param maxEntries the most entries (files, directories, extended headers)
   * @param maxBytes the most bytes all entries together may copy out
   * @param maxRatio the most bytes copied per archive byte (beyond the first MiB), or 0 for no such
   *     bound: real weights barely compress, a zip bomb expands hundreds of times
   */
  public record Limits(int maxEntries, long maxBytes, int maxRatio) {

    /** Entries and bytes only, no bound on the expansion ratio. */
    public static Limits of(int maxEntries, long maxBytes) {
      return new Limits(maxEntries, maxBytes, 0);
    }
  }

  /** The archive broke a size or count limit: the client should send something smaller. */
  public static final class LimitException extends FormatException {
    LimitException(String message) {
      super(message);
    }
  }

  /** Receives each checked entry, in archive order. */
  @FunctionalInterface
  public interface Visitor {
    void entry(Entry entry) throws IOException, FormatException;
  }

  /** Longest entry name quoted whole in a message. */
  private static final int MAX_NAME_IN_MESSAGE = 200;

  /** Entries looked at by {@link #anyEntry} before it gives up. */
  private static final int MAX_LISTED = 100_000;

  private ArchiveReader() {}

  /**
   * The archive kind by magic bytes ({@code PK\3\4}, or {@code PK\5\6} for an empty zip; {@code ustar}
   * at byte 257 for tar), or {@code null}.
   */
  public static Kind detect(Path file) throws IOException {
    byte[] head = new byte[512];
    int n;
    try (InputStream in = Files.newInputStream(file)) {
      n = in.readNBytes(head, 0, head.length);
    }
    if (n >= 4 && head[0] == 'P' && head[1] == 'K'
        && (head[2] == 3 && head[3] == 4 || head[2] == 5 && head[3] == 6)) {
      return Kind.ZIP;
    }
    if (n == 512 && new String(head, 257, 5, StandardCharsets.US_ASCII).equals("ustar")) {
      return Kind.TAR;
    }
    return null;
  }

  /**
   * Reads every entry of {@code archive}, checked, into {@code visitor}.
   *
   * @return the archive's kind
   * @throws LimitException too many entries, too many bytes, or too high an expansion ratio
   * @throws FormatException not a zip or tar, damaged or truncated, an unsafe or duplicate entry name,
   *     a link or special file, or whatever the visitor refuses
   */
  public static Kind read(Path archive, Limits limits, Visitor visitor) throws IOException, FormatException {
    Kind kind = detect(archive);
    if (kind == null) {
      throw new FormatException("not a .zip or .tar archive");
    }
    long budget = limits.maxRatio() <= 0 ? limits.maxBytes()
        : Math.min(limits.maxBytes(), Files.size(archive) * (long) limits.maxRatio() + (1L << 20));
    Reading reading = new Reading(limits, budget, visitor);
    if (kind == Kind.ZIP) {
      readZip(archive, reading);
    } else {
      try (InputStream in = new BufferedInputStream(Files.newInputStream(archive), 1 << 16)) {
        TarWalker.walk(in, limits.maxEntries(), (name, type, data) -> {
          switch (type) {
            case '0', '\0', '7' -> reading.entry(name, false, data);
            case '5' -> reading.entry(name, true, InputStream.nullInputStream());
            default -> throw new FormatException("tar entry " + quote(name) + " is a "
                + switch (type) {
                  case '1' -> "hard link";
                  case '2' -> "symbolic link";
                  case '3', '4' -> "device";
                  case '6' -> "FIFO";
                  default -> "entry of type '" + type + "'";
                } + "; only regular files and directories are accepted");
          }
          return true;
        });
      }
    }
    return kind;
  }

  /**
   * Whether some entry's name, as stored, passes {@code test}: only names are read (a zip's central
   * directory, a tar's headers), nothing is checked or written, and at most 100,000 entries are looked
   * at. For choosing a reader; the chosen reader then checks the archive fully.
   *
   * @throws FormatException a damaged archive, or more entries than are looked at
   */
  public static boolean anyEntry(Path archive, Predicate<String> test) throws IOException, FormatException {
    Kind kind = detect(archive);
    if (kind == Kind.ZIP) {
      try (ZipFile zip = new ZipFile(archive.toFile())) {
        return zip.stream().limit(MAX_LISTED).anyMatch(e -> test.test(e.getName()));
      }
    }
    if (kind == Kind.TAR) {
      boolean[] found = {false};
      try (InputStream in = new BufferedInputStream(Files.newInputStream(archive), 1 << 16)) {
        TarWalker.walk(in, MAX_LISTED, (name, type, data) -> !(found[0] = test.test(name)));
      }
      return found[0];
    }
    return false;
  }

  /** One checked entry of an archive being read. */
  public static final class Entry {
    private final String name;
    private final String rawName;
    private final boolean directory;
    private final InputStream data;
    private final Reading reading;

    private Entry(String name, String rawName, boolean directory, InputStream data, Reading reading) {
      this.name = name;
      this.rawName = rawName;
      this.directory = directory;
      this.data = data;
      this.reading = reading;
    }

    /** The checked name: relative, {@code /}-separated, without {@code .}, {@code ..} or empty components. */
    public String name() {
      return name;
    }

    /** The name as the archive stores it, for messages. */
    public String rawName() {
      return rawName;
    }

    /** Whether this is a directory (which has no bytes to copy). */
    public boolean isDirectory() {
      return directory;
    }

    /** As {@link #copyTo(Path, long)} with no cap of its own. */
    public long copyTo(Path target) throws IOException, FormatException {
      return copyTo(target, Long.MAX_VALUE);
    }

    /**
     * Writes this entry's bytes to {@code target}, which must not exist yet, counting them against the
     * archive's limits as they are written.
     *
     * @param maxBytes the most bytes this entry alone may hold
     * @return the bytes written
     * @throws LimitException the archive's byte or expansion limit is passed
     * @throws FormatException the entry holds more than {@code maxBytes}
     */
    public long copyTo(Path target, long maxBytes) throws IOException, FormatException {
      long copied = 0;
      try (OutputStream out = Files.newOutputStream(target, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        byte[] buffer = new byte[1 << 16];
        int n;
        while ((n = data.read(buffer)) > 0) {
          copied += n;
          if (copied > maxBytes) {
            throw new FormatException("archive entry " + quote(rawName) + " is larger than " + maxBytes + " bytes");
          }
          reading.count(n, rawName);
          out.write(buffer, 0, n);
        }
      }
      return copied;
    }
  }

  /** The state of one {@link #read}: names seen, bytes copied. */
  private static final class Reading {
    final Limits limits;
    final long budget;
    final Visitor visitor;
    final Set<String> names = new HashSet<>();
    long written;

    Reading(Limits limits, long budget, Visitor visitor) {
      this.limits = limits;
      this.budget = budget;
      this.visitor = visitor;
    }

    void entry(String rawName, boolean directory, InputStream data) throws IOException, FormatException {
      String name = safeName(rawName);
      if (name.isEmpty()) {
        return; // the archive's root, as in "./"
      }
      if (!names.add(name)) {
        throw new FormatException("archive entry " + quote(rawName) + " appears twice");
      }
      visitor.entry(new Entry(name, rawName, directory, data, this));
    }

    void count(int bytes, String rawName) throws LimitException {
      written += bytes;
      if (written > budget) {
        throw new LimitException(written > limits.maxBytes() || budget == limits.maxBytes()
            ? "the archive expands to more than the limit of " + limits.maxBytes() + " bytes"
            : "the archive expands more than " + limits.maxRatio() + " times its own size (at entry "
                + quote(rawName) + "); a model's weights barely compress, so this looks like a zip bomb");
      }
    }
  }

  private static void readZip(Path archive, Reading reading) throws IOException, FormatException {
    int max = reading.limits.maxEntries();
    try (ZipFile zip = new ZipFile(archive.toFile())) {
      if (zip.size() > max) {
        throw new LimitException("the archive has more than " + max + " entries (" + zip.size() + ")");
      }
      Enumeration<? extends ZipEntry> entries = zip.entries();
      while (entries.hasMoreElements()) {
        ZipEntry e = entries.nextElement();
        try (InputStream in = e.isDirectory() ? InputStream.nullInputStream() : zip.getInputStream(e)) {
          reading.entry(e.getName(), e.isDirectory(), in);
        }
      }
    } catch (ZipException | EOFException e) {
      throw new FormatException("the zip archive is damaged: " + e.getMessage(), e);
    }
  }

  static LimitException tooManyEntries(int max) {
    return new LimitException("the archive has more than " + max + " entries");
  }

  /** The entry name with {@code /} separators and no {@code .} or empty components, or a problem naming it. */
  static String safeName(String raw) throws FormatException {
    String why = raw.indexOf('\0') >= 0 ? "a NUL character"
        : raw.indexOf('\\') >= 0 ? "a backslash (use '/' separators)"
        : raw.startsWith("/") ? "an absolute path"
        : raw.length() >= 2 && raw.charAt(1) == ':' ? "a drive letter"
        : null;
    List<String> parts = new ArrayList<>();
    for (String part : raw.split("/")) {
      if (part.equals("..")) {
        why = why != null ? why : "a '..' component";
      } else if (!part.isEmpty() && !part.equals(".")) {
        parts.add(part);
      }
    }
    if (why != null) {
      throw new FormatException("archive entry " + quote(raw.replace('\0', '?')) + " has an unsafe path: " + why
          + "; entries must be relative and stay inside the archive");
    }
    return String.join("/", parts);
  }

  static String quote(String name) {
    return "'" + (name.length() <= MAX_NAME_IN_MESSAGE ? name : name.substring(0, MAX_NAME_IN_MESSAGE) + "...") + "'";
  }
}
