package dev.modelpress.format.npy;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Writes an {@link NdArray} as a NumPy {@code .npy} file, as {@code np.save} does: a version 1.0
 * header (2.0 only if the header outgrows 64 KiB) padded with spaces and a newline so the data
 * starts on a 64-byte boundary, then the little-endian data in C order.
 */
public final class NpyWriter {

  private static final int ALIGN = 64;

  private NpyWriter() {}

  /**
   * Writes the array to {@code out}, which is not closed.
   *
   * @throws IllegalArgumentException the array's data does not hold exactly its declared bytes
   */
  public static void write(NdArray a, OutputStream out) throws IOException {
    ByteBuffer data = checkedData(a);
    out.write(header(a));
    if (data.hasArray()) {
      out.write(data.array(), data.arrayOffset() + data.position(), data.remaining());
    } else {
      byte[] chunk = new byte[(int) Math.min(data.remaining(), 1 << 16)];
      while (data.hasRemaining()) {
        int n = Math.min(chunk.length, data.remaining());
        data.get(chunk, 0, n);
        out.write(chunk, 0, n);
      }
    }
  }

  /** The data buffer, checked to hold exactly {@code elementCount * size} bytes. */
  static ByteBuffer checkedData(NdArray a) {
    ByteBuffer data = a.data();
    long expected = a.elementCount() * a.dtype().size();
    if (data.remaining() != expected) {
      throw new IllegalArgumentException(
          "array "
              + NdArrays.quote(a.name())
              + ": shape "
              + NdArrays.shapeString(a.shape())
              + " of "
              + a.dtype().descriptor()
              + " needs "
              + expected
              + " bytes but its data holds "
              + data.remaining());
    }
    return data;
  }

  /** Magic, version, header length and the padded header dict. */
  static byte[] header(NdArray a) {
    String dict =
        "{'descr': '"
            + a.dtype().descriptor()
            + "', 'fortran_order': False, 'shape': "
            + NdArrays.shapeString(a.shape())
            + ", }";
    byte[] text = dict.getBytes(StandardCharsets.ISO_8859_1);
    int version = text.length + ALIGN <= 0xffff ? 1 : 2;
    int preamble = version == 1 ? 10 : 12;
    int unpadded = preamble + text.length + 1;
    int total = (unpadded + ALIGN - 1) / ALIGN * ALIGN;
    int headerLength = total - preamble;

    byte[] out = new byte[total];
    System.arraycopy(NpyReader.MAGIC, 0, out, 0, 6);
    out[6] = (byte) version;
    out[7] = 0;
    for (int i = 0; i < preamble - 8; i++) {
      out[8 + i] = (byte) (headerLength >>> (8 * i));
    }
    System.arraycopy(text, 0, out, preamble, text.length);
    Arrays.fill(out, preamble + text.length, total - 1, (byte) ' ');
    out[total - 1] = '\n';
    return out;
  }
}
