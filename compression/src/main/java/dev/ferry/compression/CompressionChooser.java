package dev.ferry.compression;

import java.util.Locale;

/**
 * Decides per round, by measurement, whether LZ4/zstd are worth their CPU time.
 *
 * <p>Compressing pays when pages cross faster with it than without: the sender compresses while
 * the socket drains, so with compression pages cross at
 * {@code min(compressorRate, link / (1 - savedFraction))} and without it at {@code link}, where
 * {@code compressorRate} is bytes before compression per second of compressing and
 * {@code savedFraction = (before - wire) / before}. On loopback (GB/s) the compressor is slower
 * than the link, so compression stays off; behind a 100 MB/s limit it pays whenever it saves.
 *
 * <p>States:
 * <pre>
 * PROBE_ON   compress a sample of this round's pages (one in {@link #PROBE_SAMPLE}) to measure
 *            the compressor (the first round starts here)
 * PROBE_OFF  send uncompressed this round only to measure the link
 * ON, OFF    steady
 * </pre>
 * After each round the chooser updates whichever estimates the round measured, then: no
 * compressor estimate, PROBE_ON; no link estimate, PROBE_OFF; otherwise ON if it pays (by 25%
 * more to switch on than to stay on, so noise does not flap it), else OFF. An estimate older than
 * {@link #PROBE_INTERVAL} rounds is re-measured by the matching probe, so the chooser keeps
 * learning as the link or the pages change.
 *
 * <p>A round's link figure is trusted only when the sender waited for the link (pacing, or a socket
 * that would not take more) and compressing took under half the round: otherwise the sender, not
 * the link, was the bottleneck and the measured rate is only the sender's pace. An uncompressed
 * round in which the sender never waited shows a link that keeps up: compression stays off.
 *
 * <p>What this class calls a round is one call of {@link #next}: the source calls it every 32 MiB
 * chunk of a migration round, so a long bulk round is decided on its way, not after it.
 *
 * <p>Time comes only from the arguments; the chooser never reads a clock.
 */
public final class CompressionChooser {
    /** Rounds after which an estimate is re-measured by a probe. */
    public static final int PROBE_INTERVAL = 8;
    /** A compressor probe tries one page in this many, so probing costs a fraction of compressing. */
    public static final int PROBE_SAMPLE = 16;
    private static final double ENABLE_MARGIN = 1.25;
    private static final double CPU_BOUND_SHARE = 0.5;

    /** The chooser's states; see the class comment. */
    public enum State { PROBE_ON, PROBE_OFF, ON, OFF }

    /**
     * Whether to compress next round, on which pages, and why (for the round report).
     *
     * @param compressEvery 0 on no page, 1 on every page, {@link #PROBE_SAMPLE} when probing
     *                      (see {@link PageEncoder#compressEvery})
     */
    public record Decision(boolean compress, int compressEvery, String reason) {
    }

    private State state = State.PROBE_ON;
    private Decision decision = new Decision(true, PROBE_SAMPLE, "probe: compressing a sample to measure the compressor");
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
     * @param wireBytes payload bytes sent for the pages the compressors were tried on
     *     ({@link StageStats#triedPayloadBytes()} of the round)
     * @param roundNanos how long the round took
     * @param bytesBeforeCompression what those would have been without LZ4/zstd
     *     ({@link StageStats#triedBeforeBytes()} of the round)
     * @param compressNanos time spent compressing ({@link StageStats#compressNanos()} of the round)
     * @param linkBandwidth the link's rate measured over the round, bytes per second (0 if unknown)
     * @param linkSaturated whether the sender waited for the link during the round: only then is
     *     the measured rate the link's; otherwise it is the sender's own pace and the link keeps up
     */
    public Decision next(long wireBytes, long roundNanos, long bytesBeforeCompression, long compressNanos,
                         long linkBandwidth, boolean linkSaturated) {
        compressorAge++;
        linkAge++;
        boolean compressed = decision.compress();
        if (compressed && compressNanos > 0 && bytesBeforeCompression > 0) {
            compressorRate = bytesBeforeCompression * 1e9 / compressNanos;
            savedFraction = Math.max(0, (double) (bytesBeforeCompression - wireBytes) / bytesBeforeCompression);
            compressorAge = 0;
        }
        boolean cpuBound = compressed && roundNanos > 0 && compressNanos >= CPU_BOUND_SHARE * roundNanos;
        if (linkBandwidth > 0 && linkSaturated && !cpuBound) {
            linkRate = linkBandwidth;
            linkAge = 0;
        } else if (!linkSaturated && !compressed && roundNanos > 0) {
            // uncompressed pages and the link still kept up: it is faster than the sender can fill it
            linkRate = Double.POSITIVE_INFINITY;
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
        // Compressing overlaps the wire (the sender compresses the next frame while the socket
        // drains the last), so pages cross at the slower of the compressor and the link's rate
        // inflated by what compression saves; uncompressed, at the link's rate.
        if (linkRate == Double.POSITIVE_INFINITY) {
            if (compressorAge >= PROBE_INTERVAL) {
                return decide(State.PROBE_ON, "probe: re-measuring the compressor; the link kept up with uncompressed pages");
            }
            return decide(State.OFF, "off: the link kept up with uncompressed pages, so compressing cannot make them cross faster");
        }
        double compressedRate = Math.min(compressorRate, linkRate / Math.max(1e-9, 1 - savedFraction));
        double needed = linkRate * (state == State.ON ? 1.0 : ENABLE_MARGIN);
        String figures = String.format(Locale.ROOT,
                "compressing saves %.0f%% at %.0f MB/s, so pages would cross at %.0f MB/s against %.0f MB/s uncompressed (link %.0f MB/s)",
                100 * savedFraction, compressorRate / 1e6, compressedRate / 1e6, linkRate / 1e6, linkRate / 1e6);
        if (compressedRate > needed) {
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
        int every = switch (next) {
            case ON -> 1;
            case PROBE_ON -> PROBE_SAMPLE;
            case PROBE_OFF, OFF -> 0;
        };
        decision = new Decision(every > 0, every, reason);
        return decision;
    }
}
