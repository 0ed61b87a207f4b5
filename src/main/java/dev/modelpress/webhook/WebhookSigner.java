package dev.modelpress.webhook;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Signs webhook bodies as the Standard Webhooks specification describes: the signature is
 * {@code v1,} followed by the base64 of HMAC-SHA256 over {@code <webhook-id>.<webhook-timestamp>.<body>},
 * keyed with the secret's decoded bytes. Secrets are written {@code whsec_<base64>} (the prefix is
 * optional on input).
 */
public final class WebhookSigner {

  /** How secrets are written. */
  public static final String SECRET_PREFIX = "whsec_";

  private final byte[] key;

  private WebhookSigner(byte[] key) {
    this.key = key.clone();
  }

  /**
   * Parses {@code whsec_<base64>} or plain base64.
   *
   * @throws IllegalArgumentException if it is not base64 or not 24 to 64 bytes long
   */
  public static WebhookSigner fromSecret(String secret) {
    String encoded = secret.strip();
    if (encoded.startsWith(SECRET_PREFIX)) {
      encoded = encoded.substring(SECRET_PREFIX.length());
    }
    byte[] key;
    try {
      key = Base64.getDecoder().decode(encoded);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("modelpress.webhooks.secret must be whsec_ followed by base64", e);
    }
    if (key.length < 24 || key.length > 64) {
      throw new IllegalArgumentException(
          "modelpress.webhooks.secret must decode to 24..64 bytes, not " + key.length);
    }
    return new WebhookSigner(key);
  }

  /** A new random 32-byte secret, as {@code whsec_<base64>}. */
  public static String generateSecret() {
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    return SECRET_PREFIX + Base64.getEncoder().encodeToString(key);
  }

  /** The {@code webhook-signature} header value for this message. */
  public String sign(String webhookId, long timestampSeconds, byte[] body) {
    return "v1," + Base64.getEncoder().encodeToString(hmac(webhookId, timestampSeconds, body));
  }

  /**
   * Whether one of the space-separated {@code v1,<base64>} signatures in {@code header} is this
   * message's, compared in constant time. (The timestamp's age is the receiver's check.)
   */
  public boolean verify(String webhookId, long timestampSeconds, byte[] body, String header) {
    byte[] expected = hmac(webhookId, timestampSeconds, body);
    for (String candidate : header.strip().split(" +")) {
      if (!candidate.startsWith("v1,")) {
        continue;
      }
      try {
        if (MessageDigest.isEqual(expected, Base64.getDecoder().decode(candidate.substring(3)))) {
          return true;
        }
      } catch (IllegalArgumentException ignored) {
        // Not base64: not a match.
      }
    }
    return false;
  }

  private byte[] hmac(String webhookId, long timestampSeconds, byte[] body) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(key, "HmacSHA256"));
      mac.update((webhookId + "." + timestampSeconds + ".").getBytes(StandardCharsets.UTF_8));
      return mac.doFinal(body);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 is part of every JDK", e);
    }
  }
}
