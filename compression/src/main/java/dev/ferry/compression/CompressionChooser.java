package dev.ferry.compression;

import java.util.Locale;

/**
 * Decides per round, by measurement, whether LZ4/zstd are worth their CPU time.
 *
 * <p>Compressing a round pays when the wire time it saves exceeds the time spent compressing:
 * {@code (before - wire) / link > compressTime}, i.e. when
 * {@code compressorRate * savedFraction > link}, where {@code compressorRate} is bytes before
 * compression per second of compressing and {@code savedFraction = (before - wire) / before}. On
 * loopback (GB/s) the compressor is slower than the link, so compression stays off; behind a
 * 100 MB/s limit it pays.
 *
 * <p>States:
 * <pre>
 * PROBE_ON   compress this round only to measure the compressor (the first round starts here)
 * PROBE_OFF  send uncompressed this round only to measure the link
 * ON, OFF    steady
 * </pre>
 * After each round the chooser updates whichever estimates the round measured, then: no
 * compressor estimate, PROBE_ON; no link estimate, PROBE_OFF; otherwise ON if it pays (by 25%
 * more to switch on than to stay on, so noise does not flap it), else OFF. An estimate older than
 * {@link #PROBE_INTERVAL} rounds is re-measured by the matching probe, so the chooser keeps
 * learning as the link or the pages change.
 *
 * <p>A compressed round's link figure is trusted only when compressing took under half the round:
 * otherwise the sender, not the link, was the bottleneck and the measured rate is too low.
 *
 * <p>Time comes only from the arguments; the chooser never reads a clock.
 */
public final class CompressionChooser {
    /** Rounds after which an estimate is re-measured by a probe. */
    public static final int PROBE_INTERVAL = 8;
    private static final double ENABLE_MARGIN = 1.25;
    private static final double CPU_BOUND_SHARE = 0.5;

    /** The chooser's states; see the class comment. */
    public enum State { PROBE_ON, PROBE_OFF, ON, OFF }

    /** Whether to compress next round, and why (for the round report). */
    public record Decision(boolean compress, String reason) {
    }

    private State state = State.PROBE_ON;
    private Decision decision = new Decision(true, "probe: compressing to measure the compressor");
    private double compressorRate = Double.NaN;
    private double savedFraction = Double.NaN;
    private double linkRate = Double.NaN;
    private int compressorAge;
    private int linkAge;

    /** The decision for the round about to run (before any {@link #next}, the first round's). */
    public Decision current() {
        return decision;
    }

    /** The state behind {@link #current()}. */
    public State state() {
        return state;
    }

    /**
     * Takes the figures of the round just finished and decides the next one.
     *
     * @param wireBytes payload bytes sent ({@link StageStats#payloadBytes()} of the round)
     * @param roundNanos how long the round took
     * @param bytesBeforeCompression what they would have been without LZ4/zstd
     *     ({@link StageStats#bytesBeforeCompression()} of the round)
     * @param compressNanos time spent compressing ({@link StageStats#compressNanos()} of the round)
     * @param linkBandwidth the link's rate measured over the round, bytes per second (0 if unknown)
     */
    public Decision next(long wireBytes, long roundNanos, long bytesBeforeCompression, long compressNanos,
                         long linkBandwidth) {
        compressorAge++;
        linkAge++;
        boolean compressed = decision.compress();
        if (compressed && compressNanos > 0 && bytesBeforeCompression > 0) {
            compressorRate = bytesBeforeCompression * 1e9 / compressNanos;
            savedFraction = Math.max(0, (double) (bytesBeforeCompression - wireBytes) / bytesBeforeCompression);
            compressorAge = 0;
        }
        boolean cpuBound = compressed && roundNanos > 0 && compressNanos >= CPU_BOUND_SHARE * roundNanos;
        if (linkBandwidth > 0 && !cpuBound) {
            linkRate = linkBandwidth;
            linkAge = 0;
        }
        if (Double.isNaN(compressorRate)) {
            return decide(State.PROBE_ON, "probe: no compressor measurement yet");
        }
        if (Double.isNaN(linkRate)) {
            return decide(State.PROBE_OFF, String.format(Locale.ROOT,
                    "probe: link not measured yet (compressing took %.0f%% of the round)",
                    roundNanos > 0 ? 100.0 * compressNanos / roundNanos : 0.0));
        }
        double wireSaved = compressorRate * savedFraction;
        double needed = linkRate * (state == State.ON ? 1.0 : ENABLE_MARGIN);
        String figures = String.format(Locale.ROOT,
                "compressing saves %.0f%% at %.0f MB/s, %.0f MB/s of wire time saved per CPU second vs link %.0f MB/s",
                100 * savedFraction, compressorRate / 1e6, wireSaved / 1e6, linkRate / 1e6);
        if (wireSaved > needed) {
            if (linkAge >= PROBE_INTERVAL) {
                return decide(State.PROBE_OFF, "probe: re-measuring the link; " + figures);
            }
            return decide(State.ON, "on: " + figures);
        }
        if (compressorAge >= PROBE_INTERVAL) {
            return decide(State.PROBE_ON, "probe: re-measuring the compressor; " + figures);
        }
        return decide(State.OFF, "off: " + figures);
    }

    private Decision decide(State next, String reason) {
        state = next;
        decision = new Decision(next == State.ON || next == State.PROBE_ON, reason);
        return decision;
    }
}
