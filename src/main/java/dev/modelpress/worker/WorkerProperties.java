package dev.modelpress.worker;

import java.nio.file.Path;
import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * @param enabled whether this process runs workers (an API-only deployment sets false)
 * @param concurrency jobs this process runs at once
 * @param lease how long a claim stays valid without a heartbeat; a job whose worker died is
 *     claimable again after this long
 * @param heartbeat how often a running job renews its lease and saves progress
 * @param pollInterval how often idle workers look for work when no notification arrives
 * @param workDir scratch space for jobs (deleted when each job ends)
 * @param evaluationThreads ONNX Runtime intra-op threads when measuring fidelity and latency
 */
@ConfigurationProperties("modelpress.worker")
public record WorkerProperties(
    @DefaultValue("true") boolean enabled,
    @DefaultValue("1") int concurrency,
    @DefaultValue("60s") Duration lease,
    @DefaultValue("2s") Duration heartbeat,
    @DefaultValue("5s") Duration pollInterval,
    @DefaultValue("data/work") Path workDir,
    @DefaultValue("1") int evaluationThreads) {}
