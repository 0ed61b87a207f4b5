package dev.modelpress.webhook;

import java.time.Duration;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * @param secret the signing secret, {@code whsec_<base64>} or plain base64 of 24 to 64 random bytes;
 *     unset: generated and logged at start in the embedded single-process mode, and callbacks
 *     refused with an external database (every process must sign with the same key)
 * @param dispatcher whether this process delivers webhooks (any number of processes may)
 * @param timeout how long one delivery may take, connect to last byte
 * @param maxAttempts deliveries tried before the webhook is given up (state FAILED)
 * @param backoff waits after the 1st, 2nd, ... failed attempt; the last one repeats
 * @param pollInterval how often due retries are looked for when no notification arrives
 * @param batchSize webhooks one dispatcher claims and delivers at once
 * @param publicBaseUrl prefixed to artifact and job links in payloads (e.g. {@code
 *     https://modelpress.example.com}); unset: links are paths relative to the API
 */
@ConfigurationProperties("modelpress.webhooks")
public record WebhookProperties(
    String secret,
    @DefaultValue("true") boolean dispatcher,
    @DefaultValue("10s") Duration timeout,
    @DefaultValue("8") int maxAttempts,
    @DefaultValue({"5s", "30s", "2m", "10m", "30m", "1h", "2h"}) List<Duration> backoff,
    @DefaultValue("5s") Duration pollInterval,
    @DefaultValue("8") int batchSize,
    String publicBaseUrl) {

  public WebhookProperties {
    if (maxAttempts < 1) {
      throw new IllegalArgumentException("modelpress.webhooks.max-attempts must be at least 1");
    }
    if (backoff == null || backoff.isEmpty()) {
      throw new IllegalArgumentException("modelpress.webhooks.backoff needs at least one duration");
    }
    backoff = List.copyOf(backoff);
  }

  /** The wait after the {@code attempt}-th (1-based) failed attempt. */
  public Duration backoffAfter(int attempt) {
    return backoff.get(Math.min(Math.max(attempt, 1), backoff.size()) - 1);
  }
}
