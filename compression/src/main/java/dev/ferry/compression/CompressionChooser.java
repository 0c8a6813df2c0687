package dev.ferry.compression;

import dev.ferry.protocol.PageEncoding;
import java.util.Locale;

/**
 * Decides, chunk by chunk, whether LZ4/zstd make a migration faster, by measuring it: how fast
 * pages cross with compression and how fast without, each measured on chunks of its own.
 *
 * <p>No model of the link is trusted. On loopback the bottleneck may be the sender's CPU, the
 * receiver's, or the link, and two cores shared with the guest move it around; what counts is
 * the rate at which non-zero pages cross (zero pages cost nothing either way, so they are left
 * out, or a zero-heavy chunk would look fast). Compression is on when that rate is higher with it.
 *
 * <p>One bound is used, because it is not a model. The sending thread either works on a page or
 * waits for the link (the pacing, a full socket); compressing adds to its work and can only win
 * back waiting. So a plain chunk also compresses a sample of its pages ({@link #SAMPLE_ONE_IN})
 * to measure what a page costs the compressor, and the link reports how long the sender waited:
 * when compressing a page takes longer than the sender waited per page, compression cannot win,
 * and the whole compressed chunk that would prove it (the costly part of a probe on a fast link)
 * is skipped.
 *
 * <p>States:
 * <pre>
 * SAMPLE    send plain, compressing one page in SAMPLE_ONE_IN: measures the plain rate and the
 *           compressor's cost per page (the first chunk starts here)
 * PROBE_ON  compress every page: measures the compressed rate
 * ON, OFF   steady: the faster of the two
 * </pre>
 * The first chunk only warms up: it is slow either way (the destination's first touches of its
 * memory, the JIT), and a rate measured on it would favour whichever mode went second; and the
 * first decision waits for {@link #FIRST_SAMPLES} SAMPLE chunks, as the next few chunks are
 * often slow too.
 * Interference (the guest, the other side, the scheduler) only ever slows a chunk down, so a
 * mode's rate is the best of its last {@link Recent#SIZE} chunks and the compressor's cost the
 * least of its last samples: a chunk slowed by a burst of guest writes changes nothing, and a
 * lasting change shows within three chunks. Switching compression on needs it to beat plain by
 * {@link #ENABLE_MARGIN} (staying on only needs it to be faster). A steady mode probes the other
 * (always through a SAMPLE chunk first) when its own rate says the other would now win, and
 * otherwise every {@link #PROBE_INTERVAL} chunks; each probe that leaves the choice unchanged
 * doubles that interval (up to {@link #MAX_INTERVAL}), so a mode that keeps losing costs ever
 * less to keep checking. The first choice is checked sooner, after {@link #FIRST_CHECK} chunks:
 * it rests on the least data, measured while the migration was starting up.
 *
 * <p>Time comes only from the arguments; the chooser never reads a clock.
 */
public final class CompressionChooser {
    /** Chunks after which the losing mode is measured again (doubling while it keeps losing). */
    public static final int PROBE_INTERVAL = 8;
    /** A SAMPLE chunk tries the compressors on one non-zero page in this many. */
    public static final int SAMPLE_ONE_IN = 32;
    /** SAMPLE chunks before the first choice. */
    static final int FIRST_SAMPLES = 3;
    /** Chunks after which the first choice is checked. */
    static final int FIRST_CHECK = 2;
    static final int MAX_INTERVAL = 128;
    static final double ENABLE_MARGIN = 1.2;
    private static final double PAGE_BYTES = 4096;

    /** The chooser's states; see the class comment. */
    public enum State { SAMPLE, PROBE_ON, ON, OFF }

    /**
     * How to encode the next chunk, and why (for the round report).
     *
     * @param compressOneIn the pages to try LZ4/zstd on, as {@link PageEncoder#compressOneIn} takes it
     */
    public record Decision(int compressOneIn, String reason) {
        /** Whether every page of the chunk is compressed. */
        public boolean compress() {
            return compressOneIn == 1;
        }
    }

    private State state = State.SAMPLE;
    private Decision decision = new Decision(SAMPLE_ONE_IN, "warm-up: sending plain");
    private boolean warmedUp;
    private final Recent plainRate = new Recent();
    private final Recent compressedRate = new Recent();
    private final Recent costNanos = new Recent();
    private double savedFraction;
    /** Whether a steady choice has been made; the first one is no re-probe. */
    private boolean settled;
    private boolean steadyOn;
    private int sinceProbe;
    private int interval = PROBE_INTERVAL;
    private boolean lastRound;

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
     * @param chunk what the encoder did during the chunk ({@link StageStats#minus})
     * @param nanos how long the chunk took
     * @param waitedNanos how much of that the sending thread spent waiting for the link (pacing,
     *     a full socket) rather than working
     */
    public Decision next(StageStats chunk, long nanos, long waitedNanos) {
        long nonZero = chunk.pages() - chunk.pagesOf(PageEncoding.ZERO);
        if (lastRound || nonZero == 0 || nanos <= 0) {
            return decision;
        }
        if (!warmedUp) {
            warmedUp = true;
            return decide(State.SAMPLE, "probe: sending plain, compressing one page in " + SAMPLE_ONE_IN
                    + " to measure both (the first chunk only warmed up)");
        }
        measure(chunk, nonZero, nanos, waitedNanos);
        return switch (state) {
            case SAMPLE -> afterSample();
            case PROBE_ON -> settle(compressedWins(), figures());
            case ON, OFF -> steady();
        };
    }

    /**
     * The round about to start is the last (stop-and-copy, with the guest paused): the steady
     * choice holds for all of it, with no probe. A probe pays now for a better choice later, and
     * after the last round there is no later; during the downtime it would only lengthen it.
     */
    public Decision lastRound() {
        lastRound = true;
        // chosen afresh, with the margin a switch on needs: no later round can correct it
        boolean on = settled && compressedWins(ENABLE_MARGIN);
        return decide(on ? State.ON : State.OFF, "last round, no probes: " + (on ? "on: " : "off: ")
                + (settled ? figures() : "no choice made yet, so plain"));
    }

    private void measure(StageStats chunk, long nonZero, long nanos, long waitedNanos) {
        if (chunk.triedPages() > 0) {
            costNanos.add((double) chunk.compressNanos() / chunk.triedPages());
            if (chunk.triedBeforeBytes() > 0) {
                savedFraction = Math.max(0,
                        (double) (chunk.triedBeforeBytes() - chunk.triedPayloadBytes()) / chunk.triedBeforeBytes());
            }
        }
        if (decision.compress()) {
            compressedRate.add(nonZero * PAGE_BYTES * 1e9 / nanos);
        } else if (nanos > chunk.compressNanos()) {
            // the sample's compressing is not what plain costs
            plainRate.add(nonZero * PAGE_BYTES * 1e9 / (nanos - chunk.compressNanos()),
                    (double) waitedNanos / nonZero);
        }
    }

    private Decision afterSample() {
        if (!settled && plainRate.count() < FIRST_SAMPLES) {
            return decide(State.SAMPLE, "probe: sending plain once more before deciding; " + figures());
        }
        if (hopeless()) {
            return settle(false, String.format(Locale.ROOT,
                    "compressing takes %.1f us a page, more than the sender waits for the link per page sent"
                            + " plain (%.1f us of %.1f us, %.0f MB/s)",
                    costNanos.min() / 1e3, plainRate.noteOfMax() / 1e3, plainNanosPerPage() / 1e3,
                    plainRate.max() / 1e6));
        }
        if (!steadyOn) {
            return decide(State.PROBE_ON, "probe: compressing every page to measure it; "
                    + String.format(Locale.ROOT, "compressing takes %.1f us a page, the sender waits %.1f us a page"
                    + " sent plain", costNanos.min() / 1e3, plainRate.noteOfMax() / 1e3));
        }
        return settle(compressedWins(), figures());
    }

    /** A probe ended: {@code on} is the choice from now on. */
    private Decision settle(boolean on, String why) {
        if (settled) {
            interval = on == steadyOn
                    ? Math.min(MAX_INTERVAL, Math.max(PROBE_INTERVAL, interval * 2)) : PROBE_INTERVAL;
        } else {
            // the first choice rests on the least data, taken while the migration was starting up
            interval = FIRST_CHECK;
        }
        settled = true;
        steadyOn = on;
        sinceProbe = 0;
        return on ? decide(State.ON, "on: " + why) : decide(State.OFF, "off: " + why);
    }

    private Decision steady() {
        sinceProbe++;
        if (compressedWins() != steadyOn) {
            return decide(State.SAMPLE, "probe: the other way may now be faster; " + figures());
        }
        if (sinceProbe >= interval) {
            return decide(State.SAMPLE, "probe: measuring both again; " + figures());
        }
        return decide(steadyOn ? State.ON : State.OFF, (steadyOn ? "on: " : "off: ") + figures());
    }

    /** Switching on needs a lead; staying on only needs to be faster. */
    private double margin() {
        return steadyOn ? 1.0 : ENABLE_MARGIN;
    }

    /**
     * Compressing a page takes longer (by the margin) than the sender waits for the link per page
     * sent plain, in the fastest recent plain chunk (the one whose rate is used). Compression adds
     * its time to the sender's own work and can only win back waiting: with too little waiting to
     * fill, it cannot win, whatever it saves on the wire.
     */
    private boolean hopeless() {
        return hopeless(margin());
    }

    private boolean hopeless(double margin) {
        return !Double.isNaN(costNanos.min()) && !Double.isNaN(plainRate.noteOfMax())
                && costNanos.min() * margin >= plainRate.noteOfMax();
    }

    private boolean compressedWins() {
        return compressedWins(margin());
    }

    private boolean compressedWins(double margin) {
        if (Double.isNaN(compressedRate.max()) || Double.isNaN(plainRate.max()) || hopeless(margin)) {
            return false;
        }
        return compressedRate.max() > plainRate.max() * margin;
    }

    private double plainNanosPerPage() {
        return PAGE_BYTES * 1e9 / plainRate.max();
    }

    private String figures() {
        if (Double.isNaN(compressedRate.max())) {
            return String.format(Locale.ROOT, "pages cross at %.0f MB/s plain; compressing takes %.1f us a page",
                    plainRate.max() / 1e6, costNanos.min() / 1e3);
        }
        return String.format(Locale.ROOT,
                "pages cross at %.0f MB/s compressed (saving %.0f%%) against %.0f MB/s plain",
                compressedRate.max() / 1e6, 100 * savedFraction, plainRate.max() / 1e6);
    }

    private Decision decide(State next, String reason) {
        state = next;
        int oneIn = switch (next) {
            case SAMPLE -> SAMPLE_ONE_IN;
            case PROBE_ON, ON -> 1;
            case OFF -> 0;
        };
        decision = new Decision(oneIn, reason);
        return decision;
    }

    /** The last few measurements of one figure, each with a second figure noted alongside. */
    private static final class Recent {
        static final int SIZE = 3;
        private final double[] values = new double[SIZE];
        private final double[] notes = new double[SIZE];
        private int count;

        void add(double value) {
            add(value, Double.NaN);
        }

        void add(double value, double note) {
            values[count % SIZE] = value;
            notes[count % SIZE] = note;
            count++;
        }

        /** How many were added, all told. */
        int count() {
            return count;
        }

        /** The largest of the last {@link #SIZE}, or NaN before the first. */
        double max() {
            int i = indexOf(true);
            return i < 0 ? Double.NaN : values[i];
        }

        /** The figure noted with {@link #max()}, or NaN. */
        double noteOfMax() {
            int i = indexOf(true);
            return i < 0 ? Double.NaN : notes[i];
        }

        /** The smallest of the last {@link #SIZE}, or NaN before the first. */
        double min() {
            int i = indexOf(false);
            return i < 0 ? Double.NaN : values[i];
        }

        private int indexOf(boolean largest) {
            int best = -1;
            for (int i = 0; i < Math.min(count, SIZE); i++) {
                if (best < 0 || (largest ? values[i] > values[best] : values[i] < values[best])) {
                    best = i;
                }
            }
            return best;
        }
    }
}
