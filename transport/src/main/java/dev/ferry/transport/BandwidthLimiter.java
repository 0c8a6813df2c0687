package dev.ferry.transport;

/**
 * {@code max-bandwidth} pacing: a token bucket that says how long a sender must wait before it
 * may put {@code bytes} on the wire. Pure arithmetic over the instants it is given, so it is
 * tested without sleeping. A rate of 0 never waits. Thread-safe: every connection of a migration
 * charges the same limiter.
 */
public final class BandwidthLimiter {
    /** How far ahead of the rate a sender may run: one burst of this many nanoseconds of bytes. */
    static final long BURST_NANOS = 5_000_000;

    private final long bytesPerSecond;
    private long allowedAt;

    /** A limiter for {@code bytesPerSecond} (0 = unlimited). */
    public BandwidthLimiter(long bytesPerSecond) {
        if (bytesPerSecond < 0) {
            throw new IllegalArgumentException("max-bandwidth must be >= 0, got " + bytesPerSecond);
        }
        this.bytesPerSecond = bytesPerSecond;
    }

    /** Whether this limiter ever waits. */
    public boolean isLimited() {
        return bytesPerSecond > 0;
    }

    /**
     * Charges {@code bytes} sent at {@code nowNanos} and returns how many nanoseconds the sender
     * must wait before sending them (0 when within the rate).
     */
    public synchronized long charge(long bytes, long nowNanos) {
        if (bytesPerSecond == 0) {
            return 0;
        }
        long start = Math.max(allowedAt, nowNanos - BURST_NANOS);
        allowedAt = start + (long) (bytes * 1e9 / bytesPerSecond);
        return Math.max(0, start - nowNanos);
    }
}
