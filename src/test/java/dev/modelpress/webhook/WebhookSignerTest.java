package dev.modelpress.webhook;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatIllegalArgumentException;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

class WebhookSignerTest {

  private static final String SECRET = "whsec_" + Base64.getEncoder().encodeToString(
      "0123456789abcdef0123456789abcdef".getBytes(StandardCharsets.US_ASCII));
  private static final byte[] BODY = "{\"type\":\"job.succeeded\",\"data\":{}}".getBytes(StandardCharsets.UTF_8);

  @Test
  void signatureIsBase64HmacSha256OfIdDotTimestampDotBody() throws Exception {
    String header = WebhookSigner.fromSecret(SECRET).sign("msg_1", 1_700_000_000L, BODY);
    Mac mac = Mac.getInstance("HmacSHA256");
    mac.init(new SecretKeySpec("0123456789abcdef0123456789abcdef".getBytes(StandardCharsets.US_ASCII), "HmacSHA256"));
    mac.update("msg_1.1700000000.".getBytes(StandardCharsets.UTF_8));
    String expected = "v1," + Base64.getEncoder().encodeToString(mac.doFinal(BODY));
    assertThat(header).isEqualTo(expected);
    assertThat(Base64.getDecoder().decode(header.substring(3))).hasSize(32);
  }

  @Test
  void theWhsecPrefixIsOptional() {
    String plain = SECRET.substring("whsec_".length());
    assertThat(WebhookSigner.fromSecret(plain).sign("a", 1, BODY)).isEqualTo(WebhookSigner.fromSecret(SECRET).sign("a", 1, BODY));
  }

  @Test
  void verifyAcceptsAnyOfSeveralSignaturesAndRejectsTamperingAndOtherKeys() {
    WebhookSigner signer = WebhookSigner.fromSecret(SECRET);
    String good = signer.sign("id", 42, BODY);
    assertThat(signer.verify("id", 42, BODY, good)).isTrue();
    assertThat(signer.verify("id", 42, BODY, "v1,AAAA " + good)).isTrue();
    byte[] tampered = BODY.clone();
    tampered[3] ^= 1;
    assertThat(signer.verify("id", 42, tampered, good)).isFalse();
    assertThat(signer.verify("id", 43, BODY, good)).isFalse();
    assertThat(signer.verify("other", 42, BODY, good)).isFalse();
    assertThat(WebhookSigner.fromSecret(WebhookSigner.generateSecret()).verify("id", 42, BODY, good)).isFalse();
    assertThat(signer.verify("id", 42, BODY, "v2," + good.substring(3))).isFalse();
  }

  @Test
  void generatedSecretsAre32RandomBytes() {
    String a = WebhookSigner.generateSecret();
    assertThat(a).startsWith("whsec_");
    assertThat(Base64.getDecoder().decode(a.substring(6))).hasSize(32);
    assertThat(WebhookSigner.generateSecret()).isNotEqualTo(a);
  }

  @Test
  void rejectsSecretsThatAreNotBase64OrTooShortOrTooLong() {
    assertThatIllegalArgumentException().isThrownBy(() -> WebhookSigner.fromSecret("whsec_not base64!"));
    assertThatIllegalArgumentException().isThrownBy(() -> WebhookSigner.fromSecret(
        Base64.getEncoder().encodeToString(new byte[16])));
    assertThatIllegalArgumentException().isThrownBy(() -> WebhookSigner.fromSecret(
        Base64.getEncoder().encodeToString(new byte[65])));
  }
}
