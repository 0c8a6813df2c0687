package dev.ferry.engine;

import dev.ferry.compression.CompressionChooser;
import dev.ferry.compression.PageEncoder;
import dev.ferry.compression.StageStats;
import dev.ferry.core.Capability;
import dev.ferry.core.DowntimeBreakdown;
import dev.ferry.core.MigrationProgress;
import dev.ferry.core.RoundKind;
import dev.ferry.core.SourceVmState;
import dev.ferry.core.Switchover;
import dev.ferry.core.SwitchoverReason;
import dev.ferry.core.DirtyLog;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MemoryDigest;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.MigrationMetrics;
import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import dev.ferry.core.PostcopyReport;
import dev.ferry.core.RoundRecord;
import dev.ferry.core.VmControl;
import dev.ferry.dedup.DedupChooser;
import dev.ferry.postcopy.PostcopySource;
import dev.ferry.precopy.DowntimeEstimator;
import dev.ferry.precopy.PrecopyPhase;
import dev.ferry.precopy.RoundPlanner;
import dev.ferry.protocol.PageEncoding;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import dev.ferry.stream.CancelledException;
import dev.ferry.stream.PageChannels;
import dev.ferry.stream.PageSender;
import dev.ferry.stream.RoundControl;
import dev.ferry.stream.SourceControl;
import dev.ferry.transport.BandwidthLimiter;
import dev.ferry.transport.Link;
import dev.ferry.transport.LinkException;
import dev.ferry.transport.Tls;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.EventLoopGroup;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The source side of one migration session, run on the caller's thread, as the design's state
 * machine; the transitions allowed are {@link #CAN_BECOME}'s.
 *
 * <pre>
 * SETUP ──> BULK ──> ITERATE ──┬──> STOP_AND_COPY ──> COMPLETED
 *   │         │         │      └──> POSTCOPY ─────────> COMPLETED
 *   └─────────┴─────────┴──> FAILED | CANCELLED   (before the hand-over)
 * </pre>
 * It composes the phases: connecting the control connection and the page channels, pre-copy's
 * rounds ({@link PrecopyPhase}), then the hand-over: stop-and-copy here, or post-copy
 * ({@link PostcopySource}). On FAILED and CANCELLED the guest runs on the source as before: it is
 * resumed if it had been paused, and its memory is never written. The one exception is a session
 * lost after the whole stream went out but before the destination answered: the destination may
 * have resumed, so the guest stays paused here ({@code PAUSED}, "hand-over in doubt").
 */
final class SourceSession {
    private static final Map<MigrationState, Set<MigrationState>> CAN_BECOME = Map.of(
            MigrationState.SETUP, EnumSet.of(MigrationState.BULK, MigrationState.FAILED, MigrationState.CANCELLED),
            MigrationState.BULK, EnumSet.of(MigrationState.ITERATE, MigrationState.STOP_AND_COPY, MigrationState.POSTCOPY,
                    MigrationState.FAILED, MigrationState.CANCELLED),
            MigrationState.ITERATE, EnumSet.of(MigrationState.ITERATE, MigrationState.STOP_AND_COPY,
                    MigrationState.POSTCOPY, MigrationState.FAILED, MigrationState.CANCELLED),
            MigrationState.STOP_AND_COPY, EnumSet.of(MigrationState.COMPLETED, MigrationState.FAILED),
            MigrationState.POSTCOPY, EnumSet.of(MigrationState.COMPLETED, MigrationState.FAILED),
            MigrationState.COMPLETED, EnumSet.noneOf(MigrationState.class),
            MigrationState.FAILED, EnumSet.noneOf(MigrationState.class),
            MigrationState.CANCELLED, EnumSet.noneOf(MigrationState.class));

    private final GuestMemory memory;
    private final DirtyLog dirtyLog;
    private final VmControl vm;
    private final MigrationParameters params;
    private final InetSocketAddress destination;
    private final EventLoopGroup group;
    private final NanoClock clock;
    private final MeterRegistry registry;
    private final String guest;
    private final MigrationListener listener;
    private final BandwidthLimiter limiter;
    /** The gang this guest migrates in and its number there, or null and 0. */
    private final Gang gang;
    private final int member;
    /** Null for plaintext; loaded when the session runs, so bad files fail it with the guest running here. */
    private Tls tls;
    private final List<RoundRecord> rounds = new java.util.concurrent.CopyOnWriteArrayList<>();
    /** With dedup, the pages the destination reported stale references for: they cross in full next. */
    private PageBitmap inFull;
    private final long startNanos;
    private volatile MigrationMetrics metrics;
    private volatile String migrationId;
    private volatile long downtimeLimitMillis;
    private volatile PrecopyPhase precopy;
    private volatile PageChannels channels;
    private volatile PageSender requests;
    private volatile SourceControl control;
    private volatile long setupNanos = -1;
    private volatile int throttlePercent;
    private volatile double downtimeMs = -1;
    private volatile PostcopySource postcopy;
    /** The shortest JOIN round trip: the hand-over's END and the destination's answer take as long. */
    private long roundTripNanos = -1;

    private volatile MigrationState state = MigrationState.SETUP;
    private volatile boolean cancelRequested;
    private volatile boolean postcopyRequested;
    private Set<Capability> negotiated = EnumSet.noneOf(Capability.class);
    private long session;
    private boolean paused;
    private boolean handedOver;
    private boolean postcopyStarted;
    /** References the post-copy barrier found stale (they crossed once more in full). */
    private long postcopyStale;

    SourceSession(GuestMemory memory, DirtyLog dirtyLog, VmControl vm, MigrationParameters params,
            InetSocketAddress destination, EventLoopGroup group, NanoClock clock, MeterRegistry registry, String guest,
            MigrationListener listener, Gang gang, int member) {
        this.gang = gang;
        this.member = member;
        this.memory = memory;
        this.dirtyLog = dirtyLog;
        this.vm = vm;
        this.params = params;
        this.destination = destination;
        this.group = group;
        this.clock = clock;
        this.registry = registry;
        this.guest = guest;
        this.listener = listener;
        this.limiter = gang != null ? gang.limiter() : new BandwidthLimiter(params.maxBandwidth());
        this.downtimeLimitMillis = params.downtimeLimitMillis();
        this.migrationId = "";
        this.startNanos = clock.nanoTime();
    }

    private void registerMeters() {
        metrics = new MigrationMetrics(registry, "source", migrationId, guest, this::progress);
    }

    /** A snapshot at this moment, from any thread. */
    MigrationProgress progress() {
        long now = clock.nanoTime();
        PrecopyPhase pre = precopy;
        PageChannels ch = channels;
        PostcopySource post = postcopy;
        RoundRecord last = pre == null ? null : pre.lastRound();
        long transferred = 0;
        Map<String, Long> kinds = Map.of();
        if (ch != null) {
            transferred += ch.bytesSent();
            StageStats stats = ch.stats();
            PageSender req = requests;
            if (req != null) {
                transferred += req.link().bytesSent();
                stats = stats.plus(req.stats());
            }
            kinds = pagesByKind(stats);
        }
        SourceControl c = control;
        if (c != null) {
            transferred += c.link().bytesSent();
        }
        long remaining;
        if (post != null && post.remaining() >= 0) {
            remaining = post.remaining() * GuestMemory.PAGE_SIZE;
        } else if (pre != null) {
            remaining = pre.remainingPages() * GuestMemory.PAGE_SIZE;
        } else {
            remaining = state.isTerminal() ? 0 : memory.byteSize();
        }
        if (state == MigrationState.COMPLETED) {
            remaining = 0;
        }
        double elapsedMs = (now - startNanos) / 1e6;
        double throughput = last != null ? last.bandwidthBytesPerSec()
                : elapsedMs > 0 ? transferred * 1000.0 / elapsedMs : 0;
        double dirtyRate = last == null || last.durationMs() <= 0 ? 0
                : last.dirtyPages() * (double) GuestMemory.PAGE_SIZE / (last.durationMs() / 1000.0);
        return new MigrationProgress("source", migrationId, state, setupNanos < 0 ? -1 : setupNanos / 1e6, elapsedMs,
                transferred, remaining, memory.byteSize(), dirtyRate, throughput,
                pre == null ? -1 : pre.lastEstimate().totalMs(), pre == null ? 0 : pre.syncs(), kinds,
                post == null ? 0 : post.pagesRequested(), throttlePercent, downtimeMs);
    }

    /** {@code migrate-set-parameters max-bandwidth}: every channel goes at the new rate from its next frame. */
    void maxBandwidth(long bytesPerSecond) {
        limiter.rate(dev.ferry.core.Configuration.MAX_BANDWIDTH.check(bytesPerSecond), clock.nanoTime());
    }

    long maxBandwidth() {
        return limiter.rate();
    }

    /** {@code migrate-set-parameters downtime-limit}: decides the rounds still to end. */
    void downtimeLimitMillis(long millis) {
        downtimeLimitMillis = dev.ferry.core.Configuration.DOWNTIME_LIMIT.check(millis);
        PrecopyPhase pre = precopy;
        if (pre != null) {
            pre.planner().downtimeLimitMillis(millis);
        }
    }

    long downtimeLimitMillis() {
        return downtimeLimitMillis;
    }

    MigrationState state() {
        return state;
    }

    void cancel() {
        if (state == MigrationState.POSTCOPY) {
            throw new IllegalStateException("cannot cancel during post-copy: the guest already runs on the destination"
                    + " and its newest pages exist only there");
        }
        cancelRequested = true;
    }

    void startPostcopy() {
        if (!params.capabilities().contains(Capability.POSTCOPY)) {
            throw new IllegalStateException("post-copy was not offered: add the postcopy capability to the parameters");
        }
        postcopyRequested = true;
    }

    /** Runs the migration to its end and reports it; never throws for a migration failure. */
    MigrationReport run() {
        long start = startNanos;
        long pauseNanos = -1;
        long resumeNanos = -1;
        long destinationDigest = 0;
        long digestAtPause = 0;
        long sealedAtPause = 0;
        String error = null;
        boolean verified = false;
        MemoryDigest sentDigest = null;
        PostcopyReport postcopyReport = null;
        SwitchoverReason reason = null;
        DowntimeBreakdown actual = DowntimeBreakdown.UNKNOWN;
        long wireBytes = 0;
        long lostBytes = 0;
        long endNanos = -1;
        try {
            tls = new TlsCredentials(params.tlsCert(), params.tlsKey(), params.tlsCa(), params.tlsAllow(),
                    params.tlsProvider()).forSource(destination.getHostString());
            SourceControl control = new SourceControl(connect(Gang.CONTROL), params.peerTimeoutMillis());
            this.control = control;
            Wire.Welcome welcome = control.hello(new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE, memory.byteSize(),
                    Wire.mask(params.capabilities()), params.mode().ordinal(), params.channels(), params.migrationId()));
            accept(welcome);
            migrationId = DestinationSession.meterId(params.migrationId(), session);
            registerMeters();
            sentDigest = new MemoryDigest(memory.pageCount());
            if (negotiated.contains(Capability.DEDUP)) {
                inFull = new PageBitmap(memory.pageCount());
            }
            PageChannels channels = new PageChannels(joinPageChannels(sentDigest), memory.pageCount(), clock);
            this.channels = channels;
            PageSender requests = null;
            if (negotiated.contains(Capability.POSTCOPY)) {
                requests = sender(params.channels(), join(params.channels()), sentDigest, false);
                this.requests = requests;
            }
            PageBitmap toSend = new PageBitmap(memory.pageCount());
            RoundControl roundControl = new RoundControl() {
                @Override
                public boolean cancelled() {
                    return cancelRequested && !paused;
                }

                @Override
                public boolean stopEarly() {
                    return postcopyRequested && !paused && postcopyNegotiated();
                }
            };
            PrecopyPhase precopy = new PrecopyPhase(params, dirtyLog, channels, control, clock, this::recordRound,
                    this::tick, this::throttle, roundTripNanos, inFull, sampleDeviceState());
            precopy.planner().downtimeLimitMillis(downtimeLimitMillis);
            this.precopy = precopy;
            RoundPlanner.Step step = precopy.run(toSend, start, roundControl,
                    () -> postcopyRequested && postcopyNegotiated(),
                    bulk -> {
                        if (bulk) {
                            setupNanos = clock.nanoTime() - start;
                        }
                        enter(bulk ? MigrationState.BULK : MigrationState.ITERATE);
                    });
            checkCancelled();
            reason = reason(step);
            if (step == RoundPlanner.Step.FAIL_STALLED) {
                RoundRecord r = precopy.lastRound();
                throw new ProtocolException(String.format(java.util.Locale.ROOT, "pre-copy stalled (convergence %s):"
                        + " the guest dirtied %d pages while round %d sent %d, expected downtime %.1f ms against a"
                        + " limit of %d ms%s; the guest keeps running here", params.convergence().name()
                        .toLowerCase(java.util.Locale.ROOT), r.dirtyPages(), r.round(), r.pagesSent(),
                        r.expectedDowntimeMs(), downtimeLimitMillis, throttlePercent > 0 ? ", throttled to "
                        + throttlePercent + "%" : ""));
            }
            if (step == RoundPlanner.Step.SWITCH_POSTCOPY && !postcopyNegotiated()) {
                throw new ProtocolException("pre-copy stalled and the convergence policy asks for post-copy, which"
                        + " the destination did not accept; the guest keeps running here");
            }
            Wire.Resumed resumed;
            if (step == RoundPlanner.Step.SWITCH_POSTCOPY) {
                enter(MigrationState.POSTCOPY);
                // from the request, as QEMU's downtime_start: the guest stops somewhere inside the call
                pauseNanos = clock.nanoTime();
                vm.pause();
                paused = true;
                dirtyLog.sync(toSend);
                postcopyStarted = true;
                long pages = toSend.cardinality();
                long bytesBefore = channels.bytesSent() + requests.link().bytesSent();
                long began = clock.nanoTime();
                long syncNanos = began - pauseNanos;
                PostcopySource postcopy = new PostcopySource(channels, requests, control, clock,
                        params.recoverTimeoutMillis(), this::reconnect, this::tick);
                this.postcopy = postcopy;
                byte[] deviceState = vm.saveDeviceState();
                PostcopySource.Result result;
                try {
                    result = postcopy.run(toSend, precopy.rounds() + 1, pauseNanos, deviceState, sentDigest, session);
                } catch (SourceControl.Refused e) {
                    // the destination failed before the switch and never ran the guest: it runs here again
                    postcopyStarted = false;
                    throw e;
                }
                sealedAtPause = PageDigest.seal(sentDigest.value(), deviceState, session);
                resumed = result.resumed();
                digestAtPause = sentDigest.value();
                double pauseMs = (result.resumeNanos() - pauseNanos) / 1e6;
                actual = new DowntimeBreakdown(syncNanos / 1e6, 0, 0, pauseMs - syncNanos / 1e6);
                long nanos = clock.nanoTime() - began;
                lostBytes = result.bytesOnLostLinks();
                postcopyStale = result.staleReferences();
                long bytes = lostBytes + channels.bytesSent() + requests.link().bytesSent() - bytesBefore;
                recordRound(new RoundRecord(precopy.rounds() + 1, RoundKind.POSTCOPY, pages, bytes, nanos / 1e6, 0,
                        (long) DowntimeEstimator.bandwidth(bytes, nanos), 0, false, channels.compressionReason(), Map.of()));
                postcopyReport = new PostcopyReport(precopy.rounds(), 0, result.pagesRequested(), result.pagesPushed(),
                        nanos / 1e6, result.recoveries(), null, 0, 0, 0, List.of());
            } else {
                enter(MigrationState.STOP_AND_COPY);
                pauseNanos = clock.nanoTime();
                vm.pause();
                paused = true;
                precopy.stopAndCopy(toSend, roundControl);
                long copied = clock.nanoTime();
                byte[] deviceState = vm.saveDeviceState();
                control.deviceState(deviceState);
                long deviceSent = clock.nanoTime();
                digestAtPause = sentDigest.value();
                sealedAtPause = PageDigest.seal(digestAtPause, deviceState, session);
                control.end(sealedAtPause, pauseNanos);
                handedOver = true;
                try {
                    resumed = control.awaitResumed();
                } catch (SourceControl.Refused e) {
                    handedOver = false;
                    throw e;
                }
                double syncMs = precopy.finalSyncNanos() / 1e6;
                actual = new DowntimeBreakdown(syncMs, (copied - pauseNanos) / 1e6 - syncMs,
                        (deviceSent - copied) / 1e6, (resumed.resumeNanos() - deviceSent) / 1e6);
            }
            destinationDigest = resumed.digest();
            if (destinationDigest != sealedAtPause) {
                // whatever resumed there is not what was sent: nobody knows which copy is good
                throw new ProtocolException(String.format("the destination answered RESUMED with digest %016x, not the"
                        + " %016x sent (memory and device state, this session)", destinationDigest, sealedAtPause));
            }
            resumeNanos = resumed.resumeNanos();
            downtimeMs = (resumeNanos - pauseNanos) / 1e6;
            endNanos = clock.nanoTime();
            enter(MigrationState.COMPLETED);
            // after the migration's time: the guest already runs on the destination meanwhile
            long scanned = PageDigest.scan(memory);
            verified = scanned == digestAtPause;
            if (!verified) {
                error = String.format("verification failed: memory sent %016x, source memory %016x", digestAtPause,
                        scanned);
            }
        } catch (CancelledException e) {
            error = e.getMessage();
            reason = SwitchoverReason.CANCELLED;
            end(MigrationState.CANCELLED);
        } catch (LinkException | ProtocolException | RuntimeException e) {
            error = e.getMessage() != null ? e.getMessage() : e.toString();
            end(MigrationState.FAILED);
        } finally {
            if (channels != null) {
                wireBytes += channels.bytesSent();
                channels.close();
            }
            if (requests != null) {
                wireBytes += requests.link().bytesSent();
                requests.link().close();
                requests.close();
            }
            if (control != null) {
                wireBytes += control.link().bytesSent();
                control.close();
            }
            if (sentDigest != null) {
                sentDigest.close();
            }
            if (throttlePercent > 0) {
                // wherever the guest runs now, it runs at its own pace again
                vm.throttle(0);
                throttlePercent = 0;
            }
        }
        SourceVmState vmState;
        if (state == MigrationState.COMPLETED) {
            vmState = SourceVmState.STOPPED;
        } else if (paused && postcopyStarted) {
            vmState = SourceVmState.PAUSED;
            error = "post-copy failed (" + error + "): the guest ran on the destination, so it stays paused here"
                    + " with the memory it had at the switch-over";
        } else if (paused && handedOver) {
            vmState = SourceVmState.PAUSED;
            error = "hand-over in doubt (" + error + "): the destination may have resumed, so the guest stays paused here";
        } else {
            if (paused) {
                vm.resume();
            }
            vmState = SourceVmState.RUNNING;
        }
        PrecopyPhase precopy = this.precopy;
        double lastExpectedMs = precopy == null ? -1 : precopy.expectedDowntimeMs();
        double downtimeMs = resumeNanos > 0 ? (resumeNanos - pauseNanos) / 1e6 : -1;
        if (metrics != null) {
            metrics.switchover(lastExpectedMs, downtimeMs);
        }
        Switchover switchover = null;
        if (precopy != null) {
            DowntimeBreakdown predicted = precopy.estimateAtSwitch();
            boolean exceeded = state == MigrationState.COMPLETED && !postcopyStarted
                    && (Switchover.exceeds(downtimeMs, downtimeLimitMillis)
                    || Switchover.exceeds(predicted.totalMs(), downtimeLimitMillis));
            switchover = new Switchover(reason, params.convergence(), downtimeLimitMillis,
                    precopy.planner().stalledRounds(), precopy.planner().throttlePercent(), exceeded, predicted, actual);
            if (exceeded && error == null) {
                error = String.format(java.util.Locale.ROOT, "the guest was paused %.1f ms (predicted %.1f ms) against"
                        + " a downtime limit of %d ms (%s)", downtimeMs, predicted.totalMs(), downtimeLimitMillis, reason);
            }
        }
        long pages = rounds.stream().mapToLong(RoundRecord::pagesSent).sum();
        StageStats stats = channels == null ? StageStats.empty() : channels.stats();
        if (requests != null) {
            stats = stats.plus(requests.stats());
        }
        long stale = (precopy == null ? 0 : precopy.staleReferences()) + postcopyStale;
        dev.ferry.core.DedupReport dedup = channels == null ? null
                : channels.dedupReport(stats.pagesOf(PageEncoding.DEDUP), stale, requests);
        return new MigrationReport("source", params.mode(), memory.byteSize(), GuestMemory.PAGE_SIZE, state, verified,
                ((endNanos > 0 ? endNanos : clock.nanoTime()) - start) / 1e6, downtimeMs, lastExpectedMs,
                wireBytes + lostBytes, pages,
                List.copyOf(rounds), pagesByKind(stats), negotiated, error, vmState, state == MigrationState.COMPLETED,
                digestAtPause, postcopyReport, dedup, migrationId, setupNanos < 0 ? -1 : setupNanos / 1e6, switchover);
    }

    private static SwitchoverReason reason(RoundPlanner.Step step) {
        return switch (step) {
            case SWITCH_CONVERGED -> SwitchoverReason.CONVERGED;
            case SWITCH_ROUND_LIMIT -> SwitchoverReason.ROUND_LIMIT;
            case SWITCH_TIME_LIMIT -> SwitchoverReason.TIME_LIMIT;
            case SWITCH_POSTCOPY -> SwitchoverReason.POSTCOPY;
            case SWITCH_STALLED, FAIL_STALLED -> SwitchoverReason.STALLED;
            case ITERATE, THROTTLE -> throw new IllegalArgumentException(step + " does not end the rounds");
        };
    }

    /**
     * The device state saved while the guest runs, where the VM can ({@link VmControl#sampleDeviceState}):
     * the second sample is the one timed, since the first runs the VM's code cold (the bench VM's
     * first took 1-2.5 ms where the pause's took 0.05), and warms it for the pause.
     */
    private DowntimeEstimator.DeviceStateSample sampleDeviceState() {
        if (vm.sampleDeviceState() == null) {
            return DowntimeEstimator.DeviceStateSample.NONE;
        }
        long began = clock.nanoTime();
        byte[] sample = vm.sampleDeviceState();
        return new DowntimeEstimator.DeviceStateSample(clock.nanoTime() - began, sample.length);
    }

    /** Auto-converge: asks the guest to slow down; false when it cannot be. */
    private boolean throttle(int percent) {
        if (!vm.throttle(percent)) {
            return false;
        }
        throttlePercent = percent;
        return true;
    }

    /** Progress as pages go: the listener hears it on this thread. */
    private void tick() {
        listener.onProgress(progress());
    }

    private void accept(Wire.Welcome welcome) throws ProtocolException {
        int offered = Wire.mask(params.capabilities());
        if ((welcome.capabilities() & ~offered) != 0) {
            throw new ProtocolException("destination accepted capabilities that were not offered: "
                    + Wire.capabilities(welcome.capabilities()));
        }
        negotiated = Wire.capabilities(welcome.capabilities());
        session = welcome.session();
        if (params.mode() != MigrationMode.PRECOPY && !negotiated.contains(Capability.POSTCOPY)) {
            throw new ProtocolException("the " + params.mode().name().toLowerCase(java.util.Locale.ROOT)
                    + " mode needs post-copy, which the destination did not accept (or it was not offered)");
        }
    }

    /** A connection of {@code role} ({@link Gang#CONTROL}, {@link Gang#REQUEST} or a page channel), a gang's shared by its members. */
    private Link connect(int role) throws LinkException {
        Gang.Connector connector = () -> Link.connect(group, destination, tls, limiter, params.peerTimeoutMillis(), clock);
        return gang == null ? connector.connect() : gang.link(member, role, connector);
    }

    /** A connection joined to the session as {@code channel}; its JOIN's round trip counts for the estimate. */
    private Link join(int channel) throws LinkException, ProtocolException {
        Link link = connect(channel == params.channels() ? Gang.REQUEST : channel);
        try {
            long sent = clock.nanoTime();
            SourceControl.join(link, new Wire.Join(session, channel, params.migrationId()), params.peerTimeoutMillis());
            long trip = clock.nanoTime() - sent;
            roundTripNanos = roundTripNanos < 0 ? trip : Math.min(roundTripNanos, trip);
            return link;
        } catch (LinkException | ProtocolException | RuntimeException e) {
            link.close();
            throw e;
        }
    }

    private List<PageSender> joinPageChannels(MemoryDigest digest) throws LinkException, ProtocolException {
        List<PageSender> senders = new ArrayList<>();
        try {
            for (int c = 0; c < params.channels(); c++) {
                senders.add(sender(c, join(c), digest, true));
            }
            return senders;
        } catch (LinkException | ProtocolException | RuntimeException e) {
            for (PageSender s : senders) {
                s.link().close();
                s.close();
            }
            throw e;
        }
    }

    /** A sender on {@code link}; page channels share the XBZRLE cache size, the request channel has none. */
    private PageSender sender(int channel, Link link, MemoryDigest digest, boolean pageChannel) {
        Set<Capability> stages = EnumSet.noneOf(Capability.class);
        stages.addAll(negotiated);
        if (!pageChannel) {
            stages.remove(Capability.XBZRLE);
        }
        PageEncoder encoder = new PageEncoder(stages, params, Math.max(GuestMemory.PAGE_SIZE,
                params.xbzrleCacheSize() / params.channels()), clock);
        boolean compressor = negotiated.contains(Capability.LZ4) || negotiated.contains(Capability.ZSTD);
        // the chooser only exists when it has something to choose
        CompressionChooser chooser = pageChannel && params.adaptiveCompression() && compressor ? new CompressionChooser() : null;
        boolean dedup = negotiated.contains(Capability.DEDUP);
        // the index is split among the channels that send references: the request channel is one in post-copy
        int indexes = params.channels() + (negotiated.contains(Capability.POSTCOPY) ? 1 : 0);
        // a guest alone looks its pages up only while that finds copies; a gang's members always do
        DedupChooser dedupChooser = dedup && pageChannel && gang == null ? new DedupChooser() : null;
        return new PageSender(channel, link, memory, encoder, chooser, digest.part(), dirtyLog, clock,
                dedup ? new dev.ferry.dedup.DedupIndex(params.dedupIndexSize() / indexes) : null,
                dedup && pageChannel ? inFull : null, dedup && gang != null ? gang.index() : null, member, dedupChooser);
    }

    /**
     * Connects the session anew after post-copy lost it (QEMU's postcopy recovery): RECOVER on a
     * new control connection, the destination's MISSING pages, then every channel joins again.
     */
    private List<Link> reconnect(PageBitmap missing) throws LinkException, ProtocolException {
        List<Link> links = new ArrayList<>();
        try {
            Link control = connect(Gang.CONTROL);
            links.add(control);
            io.netty.buffer.ByteBuf recover = control.buffer(Wire.FRAME_HEADER + 32);
            Wire.writeRecover(recover, new Wire.Recover(session, params.migrationId()));
            control.sendNow(recover);
            PostcopySource.readMissing(control, missing, params.peerTimeoutMillis());
            for (int c = 0; c <= params.channels(); c++) {
                links.add(join(c));
            }
            return links;
        } catch (LinkException | ProtocolException | RuntimeException e) {
            for (Link l : links) {
                l.close();
            }
            throw e;
        }
    }

    private void recordRound(RoundRecord record) {
        rounds.add(record);
        MigrationMetrics m = metrics;
        if (m != null) {
            m.round(record);
        }
        listener.onRound(record);
    }

    private boolean postcopyNegotiated() {
        return negotiated.contains(Capability.POSTCOPY);
    }

    private void checkCancelled() throws CancelledException {
        if (cancelRequested && !paused) {
            throw new CancelledException();
        }
    }

    private void enter(MigrationState next) {
        if (!CAN_BECOME.get(state).contains(next)) {
            throw new IllegalStateException("source session cannot go from " + state + " to " + next);
        }
        state = next;
        listener.onState(next);
    }

    /** Ends the session FAILED or CANCELLED, unless it already ended (a failure after COMPLETED stays COMPLETED). */
    private void end(MigrationState outcome) {
        if (!state.isTerminal()) {
            enter(outcome == MigrationState.CANCELLED && !CAN_BECOME.get(state).contains(outcome)
                    ? MigrationState.FAILED : outcome);
        }
    }

    private static Map<String, Long> pagesByKind(StageStats stats) {
        Map<String, Long> kinds = new LinkedHashMap<>();
        for (int code = 0; code < PageEncoding.COUNT; code++) {
            if (stats.pagesOf(code) > 0) {
                kinds.put(PageEncoding.name(code), stats.pagesOf(code));
            }
        }
        return kinds;
    }
}
