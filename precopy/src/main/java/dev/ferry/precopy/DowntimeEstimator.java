package dev.ferry.precopy;

/**
 * KVM/QEMU-style downtime estimate, from what the last round measured:
 * {@code bandwidth = wire bytes of the round / its duration} and
 * {@code expected downtime = dirty pages x wire bytes per page / bandwidth}.
 * A round that sent nothing carries no measurement; its estimate is 0 when nothing is dirty
 * and unknown (infinite) otherwise.
 */
public final class DowntimeEstimator {
    private DowntimeEstimator() {
    }

    /** Bytes per second the round drained, or 0 when it took no time or sent nothing. */
    public static double bandwidth(long roundBytes, long roundNanos) {
        return roundNanos <= 0 || roundBytes <= 0 ? 0 : roundBytes * 1e9 / roundNanos;
    }

    /** Expected downtime in ms of sending {@code dirtyPages} at the round's bytes per page and bandwidth. */
    public static double expectedDowntimeMillis(long dirtyPages, long roundPages, long roundBytes, long roundNanos) {
        if (dirtyPages == 0) {
            return 0;
        }
        double bandwidth = bandwidth(roundBytes, roundNanos);
        if (bandwidth == 0 || roundPages == 0) {
            return Double.POSITIVE_INFINITY;
        }
        double bytesPerPage = (double) roundBytes / roundPages;
        return dirtyPages * bytesPerPage / bandwidth * 1000.0;
    }
}
