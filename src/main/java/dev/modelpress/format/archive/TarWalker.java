package dev.modelpress.format.archive;

import dev.modelpress.format.FormatException;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * Walks the headers of a POSIX ustar / pax stream: checksums are checked, pax {@code path}/{@code size}
 * and GNU long names are applied to the header they precede, pax global headers are skipped, and
 * sizes may be octal or GNU base-256. What an entry's type means is the visitor's business.
 */
final class TarWalker {

  /** Receives one header (after its long name is applied) and its data; returns whether to go on. */
  @FunctionalInterface
  interface Visitor {
    boolean header(String name, char type, InputStream data) throws IOException, FormatException;
  }

  /** Largest pax or GNU long-name header body accepted. */
  private static final int MAX_EXTENDED_HEADER = 1 << 20;

  private final InputStream in;
  private long offset;

  private TarWalker(InputStream in) {
    this.in = in;
  }

  /**
   * Walks {@code in} to its end-of-archive block or until {@code visitor} returns {@code false}. What
   * the visitor does not read of an entry is skipped.
   *
   * @throws ArchiveReader.LimitException more than {@code maxEntries} headers
   * @throws FormatException a bad checksum or number field, a malformed extended header, or a truncation
   */
  static void walk(InputStream in, int maxEntries, Visitor visitor) throws IOException, FormatException {
    new TarWalker(in).walk(maxEntries, visitor);
  }

  private void walk(int maxEntries, Visitor visitor) throws IOException, FormatException {
    byte[] header = new byte[512];
    String longName = null;
    long paxSize = -1;
    int entries = 0;
    while (true) {
      long at = offset;
      if (!readBlock(header)) {
        throw new FormatException("the tar archive ends without its end-of-archive blocks (truncated?)");
      }
      if (allZero(header)) {
        return;
      }
      if (checksum(header) != octal(header, 148, 8, at)) {
        throw new FormatException("tar header at byte " + at + " has a bad checksum (not a tar archive, or damaged)");
      }
      char type = (char) header[156];
      long size = paxSize >= 0 ? paxSize : size(header, at);
      String name = longName != null ? longName : name(header);
      longName = null;
      paxSize = -1;
      if (type == 'g') {
        skip(size + padding(size));
        continue;
      }
      if (++entries > maxEntries) {
        throw ArchiveReader.tooManyEntries(maxEntries);
      }
      if (type == 'x' || type == 'L') {
        if (size > MAX_EXTENDED_HEADER) {
          throw new FormatException("tar " + (type == 'x' ? "pax" : "long-name") + " header at byte " + at
              + " is " + size + " bytes");
        }
        byte[] body = readFully((int) size);
        skip(padding(size));
        if (type == 'L') {
          longName = cString(body, 0, body.length);
        } else {
          Map<String, String> pax = pax(body, at);
          longName = pax.get("path");
          if (pax.containsKey("size")) {
            try {
              paxSize = Long.parseLong(pax.get("size"));
            } catch (NumberFormatException e) {
              throw new FormatException("tar pax header at byte " + at + " has a bad size");
            }
          }
        }
        continue;
      }
      BoundedInput data = new BoundedInput(size);
      boolean more;
      try {
        more = visitor.header(name, type, data);
      } catch (EOFException e) {
        throw new FormatException(e.getMessage());
      }
      if (!more) {
        return;
      }
      skip(data.left + padding(size));
    }
  }

  private static long padding(long size) {
    return (512 - size % 512) % 512;
  }

  private static Map<String, String> pax(byte[] body, long at) throws FormatException {
    Map<String, String> out = new HashMap<>();
    int i = 0;
    while (i < body.length) {
      int space = i;
      while (space < body.length && body[space] != ' ') {
        space++;
      }
      int length;
      try {
        length = Integer.parseInt(new String(body, i, space - i, StandardCharsets.US_ASCII));
      } catch (NumberFormatException e) {
        throw new FormatException("tar pax header at byte " + at + " is malformed");
      }
      if (length <= space - i + 1 || i + length > body.length) {
        throw new FormatException("tar pax header at byte " + at + " is malformed");
      }
      String record = new String(body, space + 1, i + length - space - 2, StandardCharsets.UTF_8);
      int eq = record.indexOf('=');
      if (eq > 0) {
        out.put(record.substring(0, eq), record.substring(eq + 1));
      }
      i += length;
    }
    return out;
  }

  private static String name(byte[] h) {
    String name = cString(h, 0, 100);
    String prefix = new String(h, 257, 5, StandardCharsets.US_ASCII).equals("ustar") ? cString(h, 345, 155) : "";
    return prefix.isEmpty() ? name : prefix + "/" + name;
  }

  private static String cString(byte[] h, int from, int length) {
    int end = from;
    while (end < from + length && h[end] != 0) {
      end++;
    }
    return new String(h, from, end - from, StandardCharsets.UTF_8);
  }

  private static long size(byte[] h, long at) throws FormatException {
    if ((h[124] & 0x80) != 0) {
      // GNU base-256 for sizes of 8 GiB and more.
      long v = 0;
      for (int i = 125; i < 136; i++) {
        if ((v >>> 55) != 0) {
          throw new FormatException("tar header at byte " + at + " declares an impossible size");
        }
        v = (v << 8) | (h[i] & 0xff);
      }
      return v;
    }
    return octal(h, 124, 12, at);
  }

  private static long octal(byte[] h, int from, int length, long at) throws FormatException {
    long v = 0;
    int i = from;
    while (i < from + length && h[i] == ' ') {
      i++;
    }
    boolean any = false;
    for (; i < from + length && h[i] != 0 && h[i] != ' '; i++) {
      if (h[i] < '0' || h[i] > '7' || v >= (1L << 60)) {
        throw new FormatException("tar header at byte " + at + " has a bad number field");
      }
      v = v * 8 + (h[i] - '0');
      any = true;
    }
    if (!any) {
      throw new FormatException("tar header at byte " + at + " has an empty number field");
    }
    return v;
  }

  private static long checksum(byte[] h) {
    long sum = 0;
    for (int i = 0; i < 512; i++) {
      sum += (i >= 148 && i < 156) ? ' ' : (h[i] & 0xff);
    }
    return sum;
  }

  private static boolean allZero(byte[] h) {
    for (byte b : h) {
      if (b != 0) {
        return false;
      }
    }
    return true;
  }

  private boolean readBlock(byte[] block) throws IOException {
    int n = in.readNBytes(block, 0, 512);
    offset += n;
    return n == 512;
  }

  private byte[] readFully(int n) throws IOException, FormatException {
    byte[] b = in.readNBytes(n);
    offset += b.length;
    if (b.length != n) {
      throw new FormatException("the tar archive is truncated at byte " + offset);
    }
    return b;
  }

  private void skip(long n) throws IOException, FormatException {
    long left = n;
    while (left > 0) {
      long k = in.skip(left);
      if (k <= 0) {
        if (in.read() < 0) {
          throw new FormatException("the tar archive is truncated at byte " + offset);
        }
        k = 1;
      }
      left -= k;
      offset += k;
    }
  }

  /** The current entry's data: at most {@code left} bytes, and a truncated archive is an error. */
  private final class BoundedInput extends InputStream {
    long left;

    BoundedInput(long size) {
      this.left = size;
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      return read(one, 0, 1) <= 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (left == 0) {
        return -1;
      }
      int n = in.read(b, off, (int) Math.min(len, left));
      if (n < 0) {
        throw new EOFException("the tar archive is truncated at byte " + offset);
      }
      left -= n;
      offset += n;
      return n;
    }
  }
}
