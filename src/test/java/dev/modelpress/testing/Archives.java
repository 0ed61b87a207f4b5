package dev.modelpress.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/** Builds .zip and .tar archives for upload tests, including hostile ones (links, odd paths). */
public final class Archives {

  private Archives() {}

  /**
   * One archive entry.
   *
   * @param name the path as stored, unchecked (may be {@code ../x} or absolute on purpose)
   * @param type tar type flag: {@code '0'} file, {@code '5'} directory, {@code '2'} symlink ...
   * @param data file content (empty for others)
   * @param link link target for links
   */
  public record Entry(String name, char type, byte[] data, String link) {
    public static Entry file(String name, byte[] data) {
      return new Entry(name, '0', data, "");
    }

    public static Entry file(String name, Path data) throws IOException {
      return file(name, Files.readAllBytes(data));
    }

    public static Entry symlink(String name, String target) {
      return new Entry(name, '2', new byte[0], target);
    }
  }

  /** A deflated zip of the files (links and directories are written as plain entries). */
  public static Path zip(Path target, List<Entry> entries) throws IOException {
    try (ZipOutputStream zip = new ZipOutputStream(Files.newOutputStream(target))) {
      for (Entry e : entries) {
        zip.putNextEntry(new ZipEntry(e.type() == '5' && !e.name().endsWith("/") ? e.name() + "/" : e.name()));
        zip.write(e.data());
        zip.closeEntry();
      }
    }
    return target;
  }

  /** A POSIX ustar archive (names up to 100 bytes), ended by two zero blocks. */
  public static Path tar(Path target, List<Entry> entries) throws IOException {
    try (OutputStream out = Files.newOutputStream(target)) {
      for (Entry e : entries) {
        byte[] h = new byte[512];
        put(h, 0, e.name().getBytes(StandardCharsets.UTF_8));
        put(h, 100, octal(0644, 8));
        put(h, 108, octal(0, 8));
        put(h, 116, octal(0, 8));
        put(h, 124, octal(e.data().length, 12));
        put(h, 136, octal(0, 12));
        h[156] = (byte) e.type();
        put(h, 157, e.link().getBytes(StandardCharsets.UTF_8));
        put(h, 257, "ustar\0".getBytes(StandardCharsets.US_ASCII));
        put(h, 263, "00".getBytes(StandardCharsets.US_ASCII));
        for (int i = 148; i < 156; i++) {
          h[i] = ' ';
        }
        long sum = 0;
        for (byte b : h) {
          sum += b & 0xff;
        }
        put(h, 148, octal(sum, 7));
        out.write(h);
        out.write(e.data());
        out.write(new byte[(512 - e.data().length % 512) % 512]);
      }
      out.write(new byte[1024]);
    }
    return target;
  }

  private static byte[] octal(long v, int width) {
    String s = Long.toOctalString(v);
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (int i = s.length(); i < width - 1; i++) {
      b.write('0');
    }
    b.writeBytes(s.getBytes(StandardCharsets.US_ASCII));
    b.write(0);
    return b.toByteArray();
  }

  private static void put(byte[] h, int at, byte[] v) {
    System.arraycopy(v, 0, h, at, v.length);
  }
}
