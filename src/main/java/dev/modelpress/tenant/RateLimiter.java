package dev.modelpress.tenant;

import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * One token bucket per tenant, in this process's memory: with N API processes a tenant may reach
 * N times its rate. Each request takes a token; tokens refill at {@code rate} per second up to
 * {@code burst}.
 */
final class RateLimiter {

  private static final class Bucket {
    private double tokens;
    private long last;

    Bucket(double tokens, long now) {
      this.tokens = tokens;
      this.last = now;
    }

    synchronized long take(double rate, int burst, long now) {
      tokens = Math.min(burst, tokens + (now - last) * rate / 1e9);
      last = now;
      if (tokens >= 1) {
        tokens -= 1;
        return 0;
      }
      return (long) Math.ceil((1 - tokens) / rate * 1e9);
    }
  }

  private final ConcurrentHashMap<String, Bucket> buckets = new ConcurrentHashMap<>();
  private final LongSupplier nanoTime;

  RateLimiter(LongSupplier nanoTime) {
    this.nanoTime = nanoTime;
  }

  /**
   * Takes a token for {@code tenant}.
   *
   * @return 0 when admitted, else the nanoseconds until a token will be available
   */
  long acquire(String tenant, double rate, int burst) {
    long now = nanoTime.getAsLong();
    return buckets.computeIfAbsent(tenant, t -> new Bucket(burst, now)).take(rate, burst, now);
  }
}
