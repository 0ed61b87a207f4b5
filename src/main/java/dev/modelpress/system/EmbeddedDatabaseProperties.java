package dev.modelpress.system;

import java.nio.file.Path;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * The embedded PostgreSQL started when no {@code spring.datasource.url} is configured.
 *
 * @param dataDir where the cluster lives; it survives restarts
 * @param port TCP port on loopback; 0 picks a free one at each start
 * @param poolSize connections in the application's pool
 */
@ConfigurationProperties("modelpress.embedded-postgres")
public record EmbeddedDatabaseProperties(
    @DefaultValue("data/postgres") Path dataDir,
    @DefaultValue("0") int port,
    @DefaultValue("10") int poolSize) {}
