package dev.modelpress.testing;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.test.context.ActiveProfiles;

/**
 * The whole service with one worker, fast heartbeats (progress saved every 50 ms), a known webhook
 * secret and short webhook backoffs: shared by the live-progress, webhook and observability tests so
 * they run in one cached context.
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT, properties = {
    "modelpress.worker.enabled=true",
    "modelpress.worker.concurrency=1",
    "modelpress.worker.heartbeat=50ms",
    "modelpress.worker.poll-interval=500ms",
    "modelpress.events.heartbeat=1s",
    "modelpress.webhooks.secret=" + LiveServiceTest.SECRET,
    "modelpress.webhooks.backoff=300ms,600ms",
    "modelpress.webhooks.max-attempts=3",
    "modelpress.webhooks.timeout=5s",
    "modelpress.webhooks.poll-interval=200ms"})
@ActiveProfiles("test")
public @interface LiveServiceTest {

  /** The webhook secret of these tests: 32 bytes, as a receiver would be given it. */
  String SECRET = "whsec_bW9kZWxwcmVzcy10ZXN0LXdlYmhvb2stc2VjcmV0ISE=";
}
