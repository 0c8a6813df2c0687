package dev.ferry.compression;

import java.util.Locale;

/**
 * Decides, chunk by chunk, whether LZ4/zstd make a migration faster, by measuring it: how fast
 * pages cross with compression and how fast without, each measured on a chunk of its own.
 *
 * <p>No model of the link is trusted. On loopback the bottleneck may be the sender's CPU, the
 * receiver's, or the link, and two cores shared with the guest move it around; what counts is
 * the rate at which non-zero pages cross (zero pages cost nothing either way, so they are left
 * out, or a zero-heavy chunk would look fast). Compression is on when that rate is higher with it.
 *
 * <p>States:
 * <pre>
 * PROBE_OFF  send this chunk uncompressed to measure that rate (the first chunk starts here)
 * PROBE_ON   compress every page of this chunk to measure that rate
 * ON, OFF    steady: the faster of the two
 * </pre>
 * After both probes, ON needs the compressed rate to beat the plain one by
 * {@link #ENABLE_MARGIN} (staying on only needs it to be higher), so noise does not flap it, and
 * a switch to ON is confirmed by measuring plain again on the very next chunk. The
 * losing mode is probed again after {@link #PROBE_INTERVAL} chunks, and each probe that loses
 * again doubles that interval (up to {@link #MAX_INTERVAL}): a probe costs one slower chunk, and
 * one that keeps losing should cost ever less.
 *
 * <p>Time comes only from the arguments; the chooser never reads a clock.
 */
public final class CompressionChooser {
    /** Chunks after which the losing mode is measured again (doubling while it keeps losing). */
    public static final int PROBE_INTERVAL = 8;
    static final int MAX_INTERVAL = 128;
    static final double ENABLE_MARGIN = 1.1;

    /** The chooser's states; see the class comment. */
    public enum State { PROBE_OFF, PROBE_ON, ON, OFF }

    /** Whether to compress the next chunk, and why (for the round report). */
    public record Decision(boolean compress, String reason) {
    }

    private State state = State.PROBE_OFF;
    private Decision decision = new Decision(false, "probe: sending plain to measure it");
    private double plainRate = Double.NaN;
    private double compressedRate = Double.NaN;
    private double savedFraction;
    /** The steady choice, which a re-probe of the other mode may overturn. */
    private boolean steadyOn;
    private boolean reprobing;
    private int sinceProbe;
    private int interval = PROBE_INTERVAL;

    /** The decision for the chunk about to be sent. */
    public Decision current() {
        return decision;
    }

    /** The state behind {@link #current()}. */
    public State state() {
        return state;
    }

    /**
     * Takes the figures of the chunk just sent and decides the next one.
     *
     * @param nonZeroPages    pages of the chunk that were not zero pages
     * @param nanos           how long the chunk took
     * @param triedBeforeBytes payload bytes the compressors were tried on would have been without them
     * @param triedPayloadBytes what they were ({@link StageStats#triedPayloadBytes()})
     */
    public Decision next(long nonZeroPages, long nanos, long triedBeforeBytes, long triedPayloadBytes) {
        if (nonZeroPages == 0 || nanos <= 0) {
            return decision;
        }
        double rate = nonZeroPages * 4096.0 * 1e9 / nanos;
        if (decision.compress()) {
            compressedRate = rate;
            if (triedBeforeBytes > 0) {
                savedFraction = Math.max(0, (double) (triedBeforeBytes - triedPayloadBytes) / triedBeforeBytes);
            }
        } else {
            plainRate = rate;
        }
        if (Double.isNaN(plainRate)) {
            return decide(State.PROBE_OFF, "probe: sending plain to measure it");
        }
        if (Double.isNaN(compressedRate)) {
            return decide(State.PROBE_ON, "probe: compressing every page to measure it");
        }
        boolean compressedWins = compressedRate > plainRate * (steadyOn ? 1.0 : ENABLE_MARGIN);
        if (state == State.PROBE_ON || state == State.PROBE_OFF) {
            if (reprobing) {
                // the probed mode lost again: probe it less often; it won: back to the usual pace
                interval = compressedWins == steadyOn ? Math.min(MAX_INTERVAL, interval * 2) : PROBE_INTERVAL;
                reprobing = false;
            }
            sinceProbe = 0;
        } else {
            sinceProbe++;
        }
        // switching compression on is the costly mistake on a fast link, and one chunk is a small
        // sample (the start of guest RAM is mostly zero pages): confirm it on the next chunk
        boolean confirm = compressedWins && !steadyOn;
        steadyOn = compressedWins;
        String figures = String.format(Locale.ROOT,
                "pages cross at %.0f MB/s compressed (saving %.0f%%) against %.0f MB/s plain",
                compressedRate / 1e6, 100 * savedFraction, plainRate / 1e6);
        if (sinceProbe >= interval || confirm) {
            reprobing = true;
            return steadyOn
                    ? decide(State.PROBE_OFF, "probe: measuring plain again; " + figures)
                    : decide(State.PROBE_ON, "probe: measuring compressed again; " + figures);
        }
        return steadyOn ? decide(State.ON, "on: " + figures) : decide(State.OFF, "off: " + figures);
    }

    private Decision decide(State next, String reason) {
        state = next;
        decision = new Decision(next == State.ON || next == State.PROBE_ON, reason);
        return decision;
    }
}
