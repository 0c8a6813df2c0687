package dev.ferry.precopy;

import dev.ferry.compression.StageStats;
import dev.ferry.core.DirtyLog;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.RoundRecord;
import dev.ferry.protocol.PageEncoding;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.stream.CancelledException;
import dev.ferry.stream.PageChannels;
import dev.ferry.stream.RoundControl;
import dev.ferry.stream.SourceControl;
import dev.ferry.transport.LinkException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The source's pre-copy phase: the bulk round, then rounds of what the guest dirtied meanwhile,
 * each over every page channel and closed by the control connection's barrier, until the
 * {@link RoundPlanner} says to switch over; and the stop-and-copy round once the guest is paused.
 */
public final class PrecopyPhase {
    private final MigrationParameters params;
    private final DirtyLog dirtyLog;
    private final PageChannels channels;
    private final SourceControl control;
    private final NanoClock clock;
    private final Consumer<RoundRecord> onRound;
    private final MigrationListener listener;
    private final RoundPlanner planner;
    private int round;
    private RoundRecord last;
    private RoundRecord beforeLast;
    private double estimateAtSwitch = -1;
    /** With dedup, the pages the destination found a stale reference for; else null. */
    private final PageBitmap inFull;
    private long staleReferences;

    /**
     * @param onRound  takes each round's record as the round ends
     * @param listener hears the progress within a round
     * @param inFull   with dedup, where the destination's STALE pages go (they cross in full in the
     *                 next round); null without
     */
    public PrecopyPhase(MigrationParameters params, DirtyLog dirtyLog, PageChannels channels, SourceControl control,
            NanoClock clock, Consumer<RoundRecord> onRound, MigrationListener listener, PageBitmap inFull) {
        this.inFull = inFull;
        this.listener = listener;
        this.params = params;
        this.dirtyLog = dirtyLog;
        this.channels = channels;
        this.control = control;
        this.clock = clock;
        this.onRound = onRound;
        this.planner = new RoundPlanner(params);
    }

    /** Where the session is between rounds: a new round starts (the first is the bulk). */
    @FunctionalInterface
    public interface RoundStart {
        void starting(boolean bulk);
    }

    /**
     * Sends the bulk round and the rounds after it until the planner decides to switch over.
     * {@code toSend} then holds what the guest dirtied since it was last sent (and, after a
     * round stopped early for post-copy, what that round had not sent yet).
     *
     * @param startNanos        when the migration started, for the time limit
     * @param postcopyRequested whether the caller asked for post-copy now (asked after each round)
     */
    public RoundPlanner.Step run(PageBitmap toSend, long startNanos, RoundControl roundControl,
            java.util.function.BooleanSupplier postcopyRequested, RoundStart roundStart)
            throws LinkException, ProtocolException, CancelledException {
        roundStart.starting(true);
        dirtyLog.sync(toSend);
        toSend.setAll();
        send(toSend, "bulk", roundControl);
        channels.xbzrleActive(true);
        while (true) {
            RoundPlanner.Step step = planner.next(round, last.expectedDowntimeMs(), clock.nanoTime() - startNanos,
                    last.dirtyPages(), beforeLast != null ? beforeLast.dirtyPages() : -1, postcopyRequested.getAsBoolean());
            if (step != RoundPlanner.Step.ITERATE) {
                estimateAtSwitch = last.expectedDowntimeMs();
                return step;
            }
            roundStart.starting(false);
            send(toSend, "iterate", roundControl);
        }
    }

    /** The stop-and-copy round, with the guest paused: what it dirtied since the last round. */
    public void stopAndCopy(PageBitmap toSend, RoundControl roundControl)
            throws LinkException, ProtocolException, CancelledException {
        dirtyLog.sync(toSend);
        channels.lastRound();
        send(toSend, "stop-and-copy", roundControl);
        if (inFull != null && !toSend.isEmpty()) {
            // the stale references of the stop-and-copy: those pages cross in full, which cannot be stale
            send(toSend, "stale", roundControl);
            if (!toSend.isEmpty()) {
                throw new ProtocolException("the destination reported pages stale that crossed in full");
            }
        }
    }

    /** References the destination found stale (and asked for again), so far. */
    public long staleReferences() {
        return staleReferences;
    }

    /**
     * The downtime the estimator expected when the planner decided to switch over (the estimate
     * of the last round before the stop-and-copy or the post-copy), or -1 before that.
     */
    public double expectedDowntimeMs() {
        return estimateAtSwitch;
    }

    /** Rounds sent so far. */
    public int rounds() {
        return round;
    }

    private void send(PageBitmap toSend, String kind, RoundControl roundControl)
            throws LinkException, ProtocolException, CancelledException {
        if (roundControl.cancelled()) {
            throw new CancelledException();
        }
        control.checkPeer();
        round++;
        long roundPages = toSend.cardinality();
        PageChannels.Round sent = channels.sendRound(toSend, round, roundControl, () -> {
            control.checkPeer();
            listener.onProgress(channels.bytesSent(), round, roundPages - channels.roundSent());
        });
        control.roundEnd(round, sent.pages());
        if (inFull != null) {
            // the destination answers each barrier with the pages whose references were stale:
            // they go into the next round, in full
            staleReferences += control.awaitStale(round, toSend, inFull);
        }
        long dirty = kind.equals("stop-and-copy") || kind.equals("stale") ? 0 : dirtyLog.sync(toSend);
        double expected = DowntimeEstimator.expectedDowntimeMillis(dirty, sent.pages(), sent.bytes(), sent.nanos());
        long bandwidth = (long) DowntimeEstimator.bandwidth(sent.bytes(), sent.nanos());
        StageStats stats = sent.stats();
        Map<String, Long> saved = new LinkedHashMap<>();
        for (int code = 0; code < PageEncoding.COUNT; code++) {
            if (stats.bytesSavedOf(code) != 0) {
                saved.put(PageEncoding.name(code), stats.bytesSavedOf(code));
            }
        }
        RoundRecord record = new RoundRecord(round, kind, sent.pages(), sent.bytes(), sent.nanos() / 1e6, dirty,
                bandwidth, expected, stats.compressNanos() > 0, channels.compressionReason(), saved);
        beforeLast = last;
        last = record;
        onRound.accept(record);
    }
}
