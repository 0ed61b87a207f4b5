package dev.modelpress.storage;

import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.SplittableRandom;

/** Deterministic test content and streams that fail on purpose, shared by the store tests. */
final class TestStreams {

  private TestStreams() {}

  static byte[] randomBytes(int size, long seed) {
    byte[] bytes = new byte[size];
    new SplittableRandom(seed).nextBytes(bytes);
    return bytes;
  }

  /** The SHA-256 computed independently of the stores, with a plain MessageDigest. */
  static String sha256(byte[] bytes) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
  }

  /** Serves {@code bytes} up to {@code failAt}, then throws, as a dropped client upload does. */
  static InputStream failingAfter(byte[] bytes, int failAt) {
    return new InputStream() {
      private int position;

      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] buffer, int offset, int length) throws IOException {
        if (position >= failAt) {
          throw new IOException("connection reset by test");
        }
        int n = Math.min(length, failAt - position);
        System.arraycopy(bytes, position, buffer, offset, n);
        position += n;
        return n;
      }
    };
  }
}
