package dev.modelpress.job;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.Locale;
import java.util.Optional;
import org.springframework.core.env.Environment;
import org.springframework.stereotype.Component;

/**
 * Checks a job's {@code callbackUrl} before it is queued, so a webhook never fails for its syntax,
 * and refuses callbacks where no webhook could be signed: a deployment on an external database
 * must configure {@code modelpress.webhooks.secret} (only the embedded single-process mode
 * generates one, see the webhook module), because every process must sign with the same key.
 */
@Component
class CallbackUrls {

  private final boolean enabled;

  CallbackUrls(Environment env) {
    this.enabled = !env.getProperty("modelpress.webhooks.secret", "").isBlank()
        || env.getProperty("spring.datasource.url", "").isBlank();
  }

  /** Why {@code url} cannot receive webhooks, or empty when it can (or is absent). */
  Optional<String> validate(String url) {
    if (url == null) {
      return Optional.empty();
    }
    URI uri;
    try {
      uri = new URI(url);
    } catch (URISyntaxException e) {
      return Optional.of("is not a valid URL: " + e.getReason());
    }
    String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
    if (!scheme.equals("http") && !scheme.equals("https")) {
      return Optional.of("must be an absolute http or https URL");
    }
    if (uri.getHost() == null || uri.getHost().isBlank()) {
      return Optional.of("has no host name");
    }
    // Credentials in the URL would be stored with the job and shown by GET /v1/jobs.
    if (uri.getRawUserInfo() != null) {
      return Optional.of("must not carry credentials (user:password@); verify the webhook signature instead");
    }
    if (uri.getRawFragment() != null) {
      return Optional.of("must not have a fragment (#...)");
    }
    if (!enabled) {
      return Optional.of("webhooks are not enabled on this server (modelpress.webhooks.secret is not set)");
    }
    return Optional.empty();
  }
}
