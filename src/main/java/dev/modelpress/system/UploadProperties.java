package dev.modelpress.system;

import java.nio.file.Path;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.util.unit.DataSize;

/**
 * Limits and scratch space for uploads.
 *
 * @param maxBytes the largest model or dataset accepted
 * @param spoolDir where uploads are spooled and validated before they reach storage
 */
@ConfigurationProperties("modelpress.uploads")
public record UploadProperties(
    @DefaultValue("4GB") DataSize maxBytes,
    @DefaultValue("data/spool") Path spoolDir) {}
