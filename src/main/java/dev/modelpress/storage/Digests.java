package dev.modelpress.storage;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** SHA-256 instances; every JDK must provide the algorithm, so its absence is a broken JDK. */
final class Digests {

  private Digests() {}

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("The JDK provides no SHA-256", e);
    }
  }
}
