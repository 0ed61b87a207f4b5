package dev.modelpress.tenant;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The API key format {@code mp_<prefix>_<secret>}: a 12-character lowercase prefix (public: it
 * names the key in listings, logs and revocation) and a secret of 32 bytes (256 bits) from
 * {@link SecureRandom}, base64url-encoded.
 *
 * <p>Only {@code SHA-256(secret)} is stored. A fast unsalted hash is right here, unlike for
 * passwords: the secret is 256 random bits, so neither a dictionary nor a brute-force search over
 * the hash is feasible, and a slow KDF (bcrypt, argon2) would only add ~100 ms to every request.
 * Salt is unnecessary for the same reason (no two secrets collide, no precomputed tables apply).
 */
final class ApiKeys {

  /** A parsed key. */
  record Parsed(String prefix, String secret) {}

  /** A new key: the full text (shown once), its prefix and the hash to store. */
  record Generated(String key, String prefix, String hash) {}

  private static final SecureRandom RANDOM = new SecureRandom();
  private static final char[] PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789".toCharArray();
  private static final int PREFIX_LENGTH = 12;
  private static final int SECRET_BYTES = 32;
  private static final Pattern FORMAT = Pattern.compile("mp_([a-z0-9]{" + PREFIX_LENGTH + "})_([A-Za-z0-9_-]{43})");

  private ApiKeys() {}

  static Generated generate() {
    char[] prefix = new char[PREFIX_LENGTH];
    for (int i = 0; i < prefix.length; i++) {
      prefix[i] = PREFIX_ALPHABET[RANDOM.nextInt(PREFIX_ALPHABET.length)];
    }
    byte[] secret = new byte[SECRET_BYTES];
    RANDOM.nextBytes(secret);
    String encoded = Base64.getUrlEncoder().withoutPadding().encodeToString(secret);
    String p = new String(prefix);
    return new Generated("mp_" + p + "_" + encoded, p, hash(encoded));
  }

  /** Whether the text has the shape of a modelpress key (so it is not a JWT). */
  static boolean looksLikeKey(String text) {
    return text != null && text.startsWith("mp_");
  }

  /** Parses a key, or returns null when it is not in the key format. */
  static Parsed parse(String key) {
    Matcher m = FORMAT.matcher(key);
    return m.matches() ? new Parsed(m.group(1), m.group(2)) : null;
  }

  static String hash(String secret) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
          .digest(secret.getBytes(StandardCharsets.US_ASCII)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Constant-time comparison of a presented secret with a stored hash. */
  static boolean matches(String secret, String storedHash) {
    return MessageDigest.isEqual(hash(secret).getBytes(StandardCharsets.US_ASCII),
        storedHash.getBytes(StandardCharsets.US_ASCII));
  }
}
