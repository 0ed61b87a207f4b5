package dev.modelpress.job;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Live job events ({@code GET /v1/jobs/{id}/events}).
 *
 * @param timeout how long one stream stays open; clients reconnect with {@code Last-Event-ID}
 * @param heartbeat how often a comment line is sent so proxies keep an idle stream open; each beat
 *     also re-reads the watched jobs, in case a notification was lost while reconnecting
 */
@ConfigurationProperties("modelpress.events")
public record JobEventProperties(
    @DefaultValue("30m") Duration timeout,
    @DefaultValue("15s") Duration heartbeat) {}
