package dev.ferry.precopy;

import dev.ferry.core.DowntimeBreakdown;

/**
 * KVM/QEMU-style downtime estimate, from what the last round measured:
 * {@code memory = dirty pages x wire bytes per page / bandwidth}, where the bandwidth is the pace
 * the destination took bytes off the connections at since the round before (not the round's bytes
 * over its time, which a short round spends filling socket buffers), and the bytes per page are
 * what a sample of the dirty pages would take now (after a round of first resends that went raw,
 * the pages still dirty mostly go as XBZRLE deltas: 0.38 of a page on {@code hotset}); plus what
 * the pause costs besides the pages ({@link #expected}): the bytes still queued on the channels at
 * the round's end (they arrive before the last pages), the final dirty-log sync, the device state
 * as a sample of it measured, one way of the hand-over's round trip. A round that sent nothing carries no measurement; its estimate is 0
 * when nothing is dirty and unknown (infinite) otherwise.
 */
public final class DowntimeEstimator {
    private DowntimeEstimator() {
    }

    /** What this run measured that the pause will cost besides its pages. */
    public record FixedCosts(long syncNanos, long queuedBytes, long roundTripNanos, DeviceStateSample deviceState) {
        public static final FixedCosts NONE = new FixedCosts(0, 0, 0, DeviceStateSample.NONE);
    }

    /** How long saving the device state took while the guest ran, and its size. */
    public record DeviceStateSample(long nanos, long bytes) {
        /** No sample: the VM saves its device state only paused. */
        public static final DeviceStateSample NONE = new DeviceStateSample(0, 0);
    }

    /** The share of the downtime limit that bytes still queued on the link may take before a round starts. */
    static final int QUEUE_SHARE_OF_LIMIT = 4;

    /**
     * How many queued bytes may stay in front of the next round: what {@code bandwidth} carries in
     * a quarter of the downtime limit, so that a round measures the guest rather than the queue
     * and the estimate's queued part stays small; 0 when the pace is unknown.
     */
    public static long queueAllowance(double bandwidth, long downtimeLimitMillis) {
        return bandwidth <= 0 ? 0 : (long) (bandwidth * downtimeLimitMillis / 1000.0 / QUEUE_SHARE_OF_LIMIT);
    }

    /** Bytes per second the round drained, or 0 when it took no time or sent nothing. */
    public static double bandwidth(long roundBytes, long roundNanos) {
        return roundNanos <= 0 || roundBytes <= 0 ? 0 : roundBytes * 1e9 / roundNanos;
    }

    /**
     * What a dirty page would cost if sent now: {@code wireBytes} (a sample's: deltas where
     * XBZRLE holds the page), and {@code encodeNanos} of a sender's time to encode it, which
     * {@code channels} senders spend side by side.
     */
    public record PageCost(double wireBytes, double encodeNanos, int channels) {
    }

    /**
     * The pause by part: the memory part is the longer of the link's and the senders' time, which
     * overlap. The link's: {@code dirtyPages} of {@code cost.wireBytes()} each, and what was
     * queued, at {@code bandwidth} bytes a second (the pace the destination took bytes at). The
     * senders': {@code dirtyPages} encodings shared among the channels (a cold or slow delta path
     * once cost 40 us a page, four times what the link took). Then the sync, and one way of the
     * round trip measured at the handshake; the device state as its sample took to save, and its
     * bytes at {@code bandwidth} (sent after the pages). The destination's resume is not known
     * before the pause.
     */
    public static DowntimeBreakdown expected(long dirtyPages, PageCost cost, double bandwidth, FixedCosts fixed) {
        double pages = dirtyPages == 0 ? 0 : bandwidth <= 0 ? Double.POSITIVE_INFINITY
                : dirtyPages * cost.wireBytes() / bandwidth * 1000.0;
        double queued = bandwidth <= 0 ? 0 : fixed.queuedBytes() / bandwidth * 1000.0;
        double encoding = dirtyPages * cost.encodeNanos() / Math.max(1, cost.channels()) / 1e6;
        double deviceState = fixed.deviceState().nanos() / 1e6
                + (bandwidth <= 0 ? 0 : fixed.deviceState().bytes() / bandwidth * 1000.0);
        return new DowntimeBreakdown(fixed.syncNanos() / 1e6, Math.max(pages + queued, encoding), deviceState,
                fixed.roundTripNanos() / 2e6);
    }
}
