package dev.modelpress.format.npy;

import dev.modelpress.format.FormatException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Reads one NumPy {@code .npy} array (format versions 1.0, 2.0 and 3.0) from a stream.
 *
 * <p>Hostile input is refused before memory is committed to it: the declared size is checked
 * against the caller's limit before any allocation, and the data buffer grows with the bytes
 * actually present, so a header promising gigabytes over a short stream costs little. Only
 * little-endian numeric and bool arrays in C order are accepted; object arrays (pickles) never.
 */
public final class NpyReader {

  /** Bytes of the magic string {@code \x93NUMPY}. */
  static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};

  /** NumPy itself refuses headers over 10,000 bytes by default; leave room, but bound it. */
  static final int MAX_HEADER_BYTES = 1 << 16;

  /** The largest array a ByteBuffer (and so an NdArray) can hold. */
  static final long MAX_ARRAY_BYTES = Integer.MAX_VALUE - 8;

  private static final int FIRST_CHUNK = 1 << 20;

  private NpyReader() {}

  /**
   * Reads the array's header and exactly its declared data bytes, leaving the stream just after
   * them.
   *
   * @param name the array's name, used in messages and in the result
   * @param maxBytes the most data bytes the caller accepts
   * @throws FormatException not a valid npy stream, an unsupported dtype or layout, more data
   *     declared than {@code maxBytes}, or fewer bytes present than declared
   */
  public static NdArray read(String name, InputStream in, long maxBytes)
      throws IOException, FormatException {
    NpyHeader header = readHeader(name, in);
    String array = "array " + NdArrays.quote(name);
    long limit = Math.min(maxBytes, MAX_ARRAY_BYTES);
    if (header.byteLength() > limit) {
      throw new FormatException(
          array
              + ": shape "
              + NdArrays.shapeString(header.shape())
              + " of "
              + header.dtype().descriptor()
              + " declares "
              + header.byteLength()
              + " bytes, more than the "
              + limit
              + " bytes allowed");
    }
    byte[] data = readData(array, in, (int) header.byteLength());
    return new NdArray(name, header.dtype(), header.shape(), ByteBuffer.wrap(data));
  }

  static NpyHeader readHeader(String name, InputStream in) throws IOException, FormatException {
    String array = "array " + NdArrays.quote(name);
    byte[] preamble = in.readNBytes(8);
    if (preamble.length < 8 || !Arrays.equals(preamble, 0, 6, MAGIC, 0, 6)) {
      throw new FormatException(array + ": not an npy file (missing the \\x93NUMPY magic)");
    }
    int major = preamble[6] & 0xff;
    int minor = preamble[7] & 0xff;
    if (minor != 0 || major < 1 || major > 3) {
      throw new FormatException(array + ": unsupported npy format version " + major + "." + minor);
    }
    // Version 1 has a 2-byte little-endian header length, later versions a 4-byte one.
    byte[] lengthBytes = in.readNBytes(major == 1 ? 2 : 4);
    if (lengthBytes.length < (major == 1 ? 2 : 4)) {
      throw new FormatException(array + ": npy file ends inside its header");
    }
    long headerLength = 0;
    for (int i = lengthBytes.length - 1; i >= 0; i--) {
      headerLength = (headerLength << 8) | (lengthBytes[i] & 0xff);
    }
    if (headerLength > MAX_HEADER_BYTES) {
      throw new FormatException(
          array
              + ": npy header of "
              + headerLength
              + " bytes exceeds the limit of "
              + MAX_HEADER_BYTES);
    }
    byte[] header = in.readNBytes((int) headerLength);
    if (header.length < headerLength) {
      throw new FormatException(
          array
              + ": npy file ends inside its header ("
              + header.length
              + " of "
              + headerLength
              + " bytes)");
    }
    // Versions 1 and 2 write the header in Latin-1, version 3 in UTF-8.
    String text;
    if (major == 3) {
      try {
        text =
            StandardCharsets.UTF_8
                .newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(header))
                .toString();
      } catch (CharacterCodingException e) {
        throw new FormatException(array + ": npy header is not valid UTF-8");
      }
    } else {
      text = new String(header, StandardCharsets.ISO_8859_1);
    }
    return NpyHeader.parse(name, text);
  }

  /** Reads {@code length} bytes, growing the buffer only as real bytes arrive. */
  private static byte[] readData(String array, InputStream in, int length)
      throws IOException, FormatException {
    byte[] buffer = new byte[Math.min(length, FIRST_CHUNK)];
    int filled = 0;
    while (filled < length) {
      if (filled == buffer.length) {
        buffer = Arrays.copyOf(buffer, (int) Math.min(length, 2L * buffer.length));
      }
      int n = in.read(buffer, filled, buffer.length - filled);
      if (n < 0) {
        throw new FormatException(
            array
                + ": truncated: the header declares "
                + length
                + " data bytes but only "
                + filled
                + " are present");
      }
      filled += n;
    }
    return buffer;
  }
}
