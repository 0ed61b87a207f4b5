package dev.modelpress.dataset;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.util.unit.DataSize;

/**
 * @param maxDecodedBytes the most bytes a dataset's arrays may take once decompressed (guards
 *     against zip bombs and bounds the heap a job uses for its data)
 */
@ConfigurationProperties("modelpress.datasets")
public record DatasetProperties(@DefaultValue("1GB") DataSize maxDecodedBytes) {}
