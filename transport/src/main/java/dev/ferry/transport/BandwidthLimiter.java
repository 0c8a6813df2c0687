package dev.ferry.transport;

/**
 * {@code max-bandwidth} pacing: a token bucket that says how long a sender must wait before it
 * may put {@code bytes} on the wire. Pure arithmetic over the instants it is given, so it is
 * tested without sleeping. A rate of 0 never waits. Thread-safe: every connection of a migration
 * charges the same limiter, and its rate may change while they do ({@code migrate-set-parameters}).
 */
public final class BandwidthLimiter {
    /** How far ahead of the rate a sender may run: one burst of this many nanoseconds of bytes. */
    static final long BURST_NANOS = 5_000_000;

    private long bytesPerSecond;
    private long allowedAt;
    /** Bumped by every change of rate: a sender waiting at the old rate stops waiting. */
    private volatile long generation;

    /** A limiter for {@code bytesPerSecond} (0 = unlimited). */
    public BandwidthLimiter(long bytesPerSecond) {
        this.bytesPerSecond = checked(bytesPerSecond);
    }

    /** Whether this limiter waits at its current rate. */
    public synchronized boolean isLimited() {
        return bytesPerSecond > 0;
    }

    /** The current rate in bytes per second, 0 for unlimited. */
    public synchronized long rate() {
        return bytesPerSecond;
    }

    /**
     * Changes the rate from {@code nowNanos} on: what was charged at the old rate is forgiven, so
     * the next frame of every sender goes at the new rate (senders waiting now stop waiting,
     * see {@link #generation()}).
     */
    public void rate(long value, long nowNanos) {
        synchronized (this) {
            bytesPerSecond = checked(value);
            allowedAt = nowNanos;
        }
        generation++;
    }

    /** Changes with every {@link #rate(long, long)}: a sender waits only while it stays the same. */
    public long generation() {
        return generation;
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

    private static long checked(long bytesPerSecond) {
        if (bytesPerSecond < 0) {
            throw new IllegalArgumentException("max-bandwidth must be >= 0, got " + bytesPerSecond);
        }
        return bytesPerSecond;
    }
}
