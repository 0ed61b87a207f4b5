package dev.modelpress.job;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * @param maxAttempts how many times a job may be claimed (a worker dying mid-job uses one) before it
 *     fails for good
 */
@ConfigurationProperties("modelpress.jobs")
public record JobProperties(@DefaultValue("3") int maxAttempts) {}
