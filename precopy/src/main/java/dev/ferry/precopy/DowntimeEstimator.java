package dev.ferry.precopy;

import dev.ferry.core.DowntimeBreakdown;

/**
 * KVM/QEMU-style downtime estimate, from what the last round measured:
 * {@code bandwidth = wire bytes of the round / its duration} and
 * {@code memory = dirty pages x wire bytes per page / bandwidth}; plus what the pause costs
 * besides the pages ({@link #expected}): the bytes still queued on the channels at the round's
 * end (they arrive before the last pages), the final dirty-log sync, one way of the hand-over's
 * round trip. A round that sent nothing carries no measurement; its estimate is 0 when nothing is
 * dirty and unknown (infinite) otherwise.
 */
public final class DowntimeEstimator {
    private DowntimeEstimator() {
    }

    /** What this run measured that the pause will cost besides its pages. */
    public record FixedCosts(long syncNanos, long queuedBytes, long roundTripNanos) {
        public static final FixedCosts NONE = new FixedCosts(0, 0, 0);
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

    /**
     * The pause by part: the pages, and what was queued, at the round's pace; the sync; one way
     * of the round trip measured at the handshake. The device state is not known before the pause
     * (0), nor is the destination's resume.
     */
    public static DowntimeBreakdown expected(long dirtyPages, long roundPages, long roundBytes, long roundNanos,
            FixedCosts fixed) {
        double pages = expectedDowntimeMillis(dirtyPages, roundPages, roundBytes, roundNanos);
        double bandwidth = bandwidth(roundBytes, roundNanos);
        double queued = bandwidth == 0 ? 0 : fixed.queuedBytes() / bandwidth * 1000.0;
        return new DowntimeBreakdown(fixed.syncNanos() / 1e6, pages + queued, 0, fixed.roundTripNanos() / 2e6);
    }
}
