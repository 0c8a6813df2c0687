package dev.ferry.bench.workload;

import dev.ferry.core.NanoClock;

/**
 * Paces page writes at a rate: tokens accrue with the clock up to a small burst, each write takes
 * one. Owned by one thread.
 */
final class TokenBucket {
    /** Burst as a share of a second: large enough that writes go in batches, small enough to stay smooth. */
    private static final double BURST_SECONDS = 0.005;

    private final NanoClock clock;
    private final double tokensPerNano;
    private final double burst;
    private double tokens;
    private long last;

    TokenBucket(NanoClock clock, double pagesPerSecond) {
        if (!(pagesPerSecond > 0)) {
            throw new IllegalArgumentException("rate must be > 0 pages/s, got " + pagesPerSecond);
        }
        this.clock = clock;
        this.tokensPerNano = pagesPerSecond / 1e9;
        this.burst = Math.max(1, pagesPerSecond * BURST_SECONDS);
        this.last = clock.nanoTime();
    }

    /** Takes up to {@code max} tokens and returns how many were taken. */
    long take(long max) {
        long now = clock.nanoTime();
        tokens = Math.min(burst, tokens + (now - last) * tokensPerNano);
        last = now;
        long n = Math.min(max, (long) tokens);
        tokens -= n;
        return n;
    }

    /** Gives back tokens taken but not used. */
    void refund(long n) {
        tokens += n;
    }

    /** Nanoseconds until the next token, counted from the last {@link #take}. */
    long nanosUntilToken() {
        return tokens >= 1 ? 0 : (long) Math.ceil((1 - tokens) / tokensPerNano);
    }

    /** Forgets the time since the last take: a paused guest earns no writes. */
    void skipTo(long now) {
        last = now;
    }
}
