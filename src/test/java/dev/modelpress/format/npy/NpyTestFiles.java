package dev.modelpress.format.npy;

import java.io.ByteArrayOutputStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** Builders for hand-made npy bytes and access to the NumPy-written fixtures. */
final class NpyTestFiles {

  private NpyTestFiles() {}

  /** An npy file of this format version with this header dict and {@code dataBytes} bytes. */
  static byte[] npy(int major, String dict, int dataBytes) {
    byte[] header = (dict + "\n").getBytes(StandardCharsets.UTF_8);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) major, 0});
    int lengthBytes = major == 1 ? 2 : 4;
    for (int i = 0; i < lengthBytes; i++) {
      out.write(header.length >>> (8 * i));
    }
    out.writeBytes(header);
    for (int i = 0; i < dataBytes; i++) {
      out.write(i);
    }
    return out.toByteArray();
  }

  static byte[] npy(String dict, int dataBytes) {
    return npy(1, dict, dataBytes);
  }

  static Path fixture(String name) throws URISyntaxException {
    return Path.of(NpyTestFiles.class.getResource("/fixtures/" + name).toURI());
  }
}
