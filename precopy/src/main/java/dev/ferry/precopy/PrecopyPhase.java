package dev.ferry.precopy;

import dev.ferry.compression.StageStats;
import dev.ferry.core.DirtyLog;
import dev.ferry.core.DowntimeBreakdown;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.RoundKind;
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
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.IntPredicate;

/**
 * The source's pre-copy phase: the bulk round, then rounds of what the guest dirtied meanwhile,
 * each over every page channel and closed by the control connection's barrier, until the
 * {@link RoundPlanner} says to switch over (or to fail, or to throw the guest); and the
 * stop-and-copy round once the guest is paused.
 */
public final class PrecopyPhase {
    /** Dirty pages encoded on trial for the estimate: a few hundred microseconds a round. */
    private static final int PAGE_SAMPLES = 256;
    /** How often the wait for a queue to drain looks again: a millisecond is 125 KB at 1 Gbit/s. */
    private static final long DRAIN_POLL_NANOS = 1_000_000L;

    private final DirtyLog dirtyLog;
    private final PageChannels channels;
    private final SourceControl control;
    private final NanoClock clock;
    private final Consumer<RoundRecord> onRound;
    private final Runnable progress;
    private final IntPredicate throttle;
    private final long roundTripNanos;
    private final RoundPlanner planner;
    private volatile int round;
    /** What the progress reports: replaced whole, so a reader never sees one round's count with another's base. */
    private volatile Pending pending = new Pending(0, 0, 0);
    private volatile RoundRecord last;
    private RoundRecord beforeLast;
    private volatile DowntimeBreakdown lastEstimate = DowntimeBreakdown.UNKNOWN;
    private DowntimeBreakdown estimateAtSwitch = DowntimeBreakdown.UNKNOWN;
    private long syncNanos;
    /** With dedup, the pages the destination found a stale reference for; else null. */
    private final PageBitmap inFull;
    private final DowntimeEstimator.DeviceStateSample deviceState;

    /** With dedup, the pages of the last barrier's STALE; else null. */
    private final PageBitmap stale;
    private long staleReferences;
    /** Bytes the destination had taken off the page connections (sent less queued) at the last round's end, and when. */
    private long deliveredMark;
    /** The pace {@link #drainRate} measured at the last round's end, or 0 before the first. */
    private double lastDrainRate;
    private long deliveredAt;

    /**
     * @param onRound        takes each round's record as the round ends
     * @param progress       called as pages go (every 50 ms or so of a round)
     * @param throttle       asks the guest to run at most {@code 100 - percent}% of the time; false if it cannot
     * @param roundTripNanos the round trip to the destination, as measured at the handshake
     * @param inFull         with dedup, where the destination's STALE pages go (they cross in full in the
     *                       next round); null without
     * @param deviceState    a sample of the device state taken while the guest ran
     *                       ({@link DowntimeEstimator.DeviceStateSample#NONE} where the VM saves it only paused)
     */
    public PrecopyPhase(MigrationParameters params, DirtyLog dirtyLog, PageChannels channels, SourceControl control,
            NanoClock clock, Consumer<RoundRecord> onRound, Runnable progress, IntPredicate throttle,
            long roundTripNanos, PageBitmap inFull, DowntimeEstimator.DeviceStateSample deviceState) {
        this.deviceState = deviceState;
        this.inFull = inFull;
        this.stale = inFull == null ? null : new PageBitmap(inFull.pageCount());
        this.dirtyLog = dirtyLog;
        this.channels = channels;
        this.control = control;
        this.clock = clock;
        this.onRound = onRound;
        this.progress = progress;
        this.throttle = throttle;
        this.roundTripNanos = roundTripNanos;
        this.planner = new RoundPlanner(params);
    }

    /** Where the session is between rounds: a new round starts (the first is the bulk). */
    @FunctionalInterface
    public interface RoundStart {
        void starting(boolean bulk);
    }

    /**
     * Sends the bulk round and the rounds after it until the planner decides to switch over, or
     * that the migration failed to converge ({@link RoundPlanner.Step#FAIL_STALLED}).
     * {@code toSend} then holds what the guest dirtied since it was last sent (and, after a
     * round stopped early for post-copy, what that round had not sent yet).
     *
     * @param startNanos        when the migration started, for the time limit
     * @param postcopyRequested whether the caller asked for post-copy now (asked after each round)
     */
    public RoundPlanner.Step run(PageBitmap toSend, long startNanos, RoundControl roundControl,
            BooleanSupplier postcopyRequested, RoundStart roundStart)
            throws LinkException, ProtocolException, CancelledException {
        roundStart.starting(true);
        deliveredMark = channels.bytesSent();
        deliveredAt = clock.nanoTime();
        dirtyLog.sync(toSend);
        toSend.setAll();
        synced(toSend.cardinality());
        send(toSend, RoundKind.BULK, roundControl);
        channels.xbzrleActive(true);
        while (true) {
            RoundRecord r = last;
            RoundPlanner.Step step = planner.next(round, r.expectedDowntimeMs(), clock.nanoTime() - startNanos,
                    r.dirtyPages(), beforeLast != null ? beforeLast.dirtyPages() : -1, r.pagesSent(),
                    postcopyRequested.getAsBoolean());
            if (step == RoundPlanner.Step.THROTTLE && !throttle.test(planner.throttlePercent())) {
                planner.throttleRefused();
                step = RoundPlanner.Step.FAIL_STALLED;
            }
            if (step != RoundPlanner.Step.ITERATE && step != RoundPlanner.Step.THROTTLE) {
                estimateAtSwitch = lastEstimate;
                return step;
            }
            roundStart.starting(false);
            send(toSend, RoundKind.ITERATE, roundControl);
        }
    }

    /** The stop-and-copy round, with the guest paused: what it dirtied since the last round. */
    public void stopAndCopy(PageBitmap toSend, RoundControl roundControl)
            throws LinkException, ProtocolException, CancelledException {
        long began = clock.nanoTime();
        dirtyLog.sync(toSend);
        syncNanos = clock.nanoTime() - began;
        synced(toSend.cardinality());
        channels.lastRound();
        send(toSend, RoundKind.STOP_AND_COPY, roundControl);
        if (inFull != null && !toSend.isEmpty()) {
            // the stale references of the stop-and-copy: those pages cross in full, which cannot be stale
            send(toSend, RoundKind.STALE, roundControl);
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
        return estimateAtSwitch.totalMs();
    }

    /** That estimate by part ({@link DowntimeBreakdown#UNKNOWN} before the switch). */
    public DowntimeBreakdown estimateAtSwitch() {
        return estimateAtSwitch;
    }

    /** The estimate after the last round ended, by part. */
    public DowntimeBreakdown lastEstimate() {
        return lastEstimate;
    }

    /** How long the stop-and-copy's dirty-log sync took, in ns. */
    public long finalSyncNanos() {
        return syncNanos;
    }

    /** The planner: its downtime limit may change while rounds run; it knows the stall and throttle. */
    public RoundPlanner planner() {
        return planner;
    }

    /** Rounds sent so far, or the round in progress. */
    public int rounds() {
        return round;
    }

    /**
     * The dirty-log syncs so far (QEMU's dirty-sync-count): each starts a set of pages to send,
     * the stop-and-copy's too.
     */
    public int syncs() {
        return pending.syncs();
    }

    /**
     * Pages of the set the last sync made that are not sent yet: between two syncs it only
     * decreases, as frames go out.
     */
    public long remainingPages() {
        Pending p = pending;
        return Math.max(0, p.pages() - (channels.totalSent() - p.sentBefore()));
    }

    /** The last sync: how many pages it left to send, and how many the rounds had sent before it. */
    private record Pending(int syncs, long pages, long sentBefore) {
    }

    private void synced(long pages) {
        pending = new Pending(pending.syncs() + 1, pages, channels.totalSent());
    }

    /**
     * Bytes per second the destination took off the page connections since the last round's end:
     * the link's pace while anything was queued, the sender's otherwise. A round's own bytes over
     * its time measure how fast the socket buffers filled instead, which a short round does far
     * faster than the link drains them (485 MB/s measured on a 1 Gbit/s link). The round's own
     * pace when nothing was measured (no queue figure in the last round, or no time passed).
     */
    private double drainRate(boolean last, long queued, PageChannels.Round sent) {
        double round = DowntimeEstimator.bandwidth(sent.bytes(), sent.nanos());
        if (last) {
            return round;
        }
        long delivered = channels.bytesSent() - queued;
        long now = clock.nanoTime();
        double drained = DowntimeEstimator.bandwidth(delivered - deliveredMark, now - deliveredAt);
        deliveredMark = delivered;
        deliveredAt = now;
        lastDrainRate = drained > 0 ? drained : round;
        return lastDrainRate;
    }

    /**
     * Waits, bounded, until what the page connections still hold would cross within a share of
     * the downtime limit at the link's last measured pace ({@link DowntimeEstimator#queueAllowance}).
     * A round far shorter than the queue in front of it measures the queue, not the guest: on a
     * 1 Gbit/s link, rounds of 20 pages a millisecond behind 4 MB of queue were taken for a stall
     * and failed the migration (QEMU's rate limit paces its rounds alike). The link stays busy:
     * the next round starts while the allowance is still queued.
     */
    private void awaitDrain() {
        double rate = lastDrainRate;
        long allowance = DowntimeEstimator.queueAllowance(rate, planner.downtimeLimitMillis());
        long queued = channels.queuedBytes();
        if (rate <= 0 || queued <= allowance) {
            return;
        }
        long deadline = clock.nanoTime() + (long) ((queued - allowance) / rate * 2e9) + DRAIN_POLL_NANOS;
        while (queued > allowance && clock.nanoTime() < deadline) {
            LockSupport.parkNanos(DRAIN_POLL_NANOS);
            queued = channels.queuedBytes();
        }
    }

    /** The last round that ended, or null before the bulk round ended. */
    public RoundRecord lastRound() {
        return last;
    }

    private void send(PageBitmap toSend, RoundKind kind, RoundControl roundControl)
            throws LinkException, ProtocolException, CancelledException {
        if (roundControl.cancelled()) {
            throw new CancelledException();
        }
        control.checkPeer();
        round++;
        PageChannels.Round sent = channels.sendRound(toSend, round, roundControl, () -> {
            control.checkPeer();
            progress.run();
        });
        control.roundEnd(round, sent.pages());
        if (inFull != null) {
            // the destination answers each barrier with the pages whose references were stale:
            // they go into the next round, in full
            staleReferences += control.awaitStale(round, stale);
            toSend.or(stale);
            inFull.or(stale);
            stale.clearAll();
        }
        boolean last = kind == RoundKind.STOP_AND_COPY || kind == RoundKind.STALE;
        if (!last) {
            awaitDrain();
        }
        long queued = last ? 0 : channels.queuedBytes();
        long syncStart = clock.nanoTime();
        long dirty = last ? 0 : dirtyLog.sync(toSend);
        long sync = clock.nanoTime() - syncStart;
        if (!last) {
            synced(toSend.cardinality());
        }
        // what the next round sends: the pages dirtied since, and those a round stopped early left
        // unsent (a post-copy switch asked for mid-round once took 5716 of them for converged)
        long pending = last ? 0 : toSend.cardinality();
        // what they would take now, while every channel waits between rounds
        PageChannels.PageSample sample = pending == 0 ? null : channels.sample(toSend, PAGE_SAMPLES);
        DowntimeEstimator.PageCost cost = sample != null
                ? new DowntimeEstimator.PageCost(sample.bytesPerPage(), sample.encodeNanosPerPage(), channels.count())
                : new DowntimeEstimator.PageCost(sent.pages() == 0 ? 0 : (double) sent.bytes() / sent.pages(), 0,
                        channels.count());
        DowntimeBreakdown estimate = DowntimeEstimator.expected(pending, cost, drainRate(last, queued, sent),
                new DowntimeEstimator.FixedCosts(sync, queued, roundTripNanos, deviceState));
        double expected = last ? 0 : estimate.totalMs();
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
        beforeLast = this.last;
        if (!last) {
            lastEstimate = estimate;
        }
        this.last = record;
        onRound.accept(record);
        progress.run();
    }
}
