package dev.modelpress.tenant;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class RateLimiterTest {

  private final AtomicLong now = new AtomicLong(1_000_000_000L);
  private final RateLimiter limiter = new RateLimiter(now::get);

  @Test
  void admitsTheBurstThenOneRequestPerRefillInterval() {
    for (int i = 0; i < 3; i++) {
      assertThat(limiter.acquire("t", 2.0, 3)).as("request %d of the burst", i + 1).isZero();
    }
    // Empty bucket at 2 tokens/s: the next token is 500 ms away.
    assertThat(limiter.acquire("t", 2.0, 3)).isEqualTo(500_000_000L);
    now.addAndGet(250_000_000L);
    assertThat(limiter.acquire("t", 2.0, 3)).as("half a token so far").isEqualTo(250_000_000L);
    now.addAndGet(250_000_000L);
    assertThat(limiter.acquire("t", 2.0, 3)).isZero();
    assertThat(limiter.acquire("t", 2.0, 3)).isEqualTo(500_000_000L);
  }

  @Test
  void refillIsCappedAtTheBurst() {
    for (int i = 0; i < 3; i++) {
      limiter.acquire("t", 10.0, 3);
    }
    now.addAndGet(60_000_000_000L);
    int admitted = 0;
    while (limiter.acquire("t", 10.0, 3) == 0) {
      admitted++;
    }
    assertThat(admitted).isEqualTo(3);
  }

  @Test
  void tenantsHaveSeparateBuckets() {
    for (int i = 0; i < 3; i++) {
      limiter.acquire("a", 1.0, 3);
    }
    assertThat(limiter.acquire("a", 1.0, 3)).isPositive();
    assertThat(limiter.acquire("b", 1.0, 3)).isZero();
  }
}
