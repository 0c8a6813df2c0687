package dev.ferry.engine;

import dev.ferry.compression.CompressionChooser;
import dev.ferry.compression.PageEncoder;
import dev.ferry.compression.StageStats;
import dev.ferry.core.Capability;
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
    private final MigrationMetrics metrics;
    private final MigrationListener listener;
    private final BandwidthLimiter limiter;
    /** Null for plaintext; loaded when the session runs, so bad files fail it with the guest running here. */
    private Tls tls;
    private final List<RoundRecord> rounds = new ArrayList<>();

    private volatile MigrationState state = MigrationState.SETUP;
    private volatile boolean cancelRequested;
    private volatile boolean postcopyRequested;
    private Set<Capability> negotiated = EnumSet.noneOf(Capability.class);
    private long session;
    private boolean paused;
    private boolean handedOver;
    private boolean postcopyStarted;

    SourceSession(GuestMemory memory, DirtyLog dirtyLog, VmControl vm, MigrationParameters params,
            InetSocketAddress destination, EventLoopGroup group, NanoClock clock, MigrationMetrics metrics,
            MigrationListener listener) {
        this.memory = memory;
        this.dirtyLog = dirtyLog;
        this.vm = vm;
        this.params = params;
        this.destination = destination;
        this.group = group;
        this.clock = clock;
        this.metrics = metrics;
        this.listener = listener;
        this.limiter = new BandwidthLimiter(params.maxBandwidth());
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
        long start = clock.nanoTime();
        long pauseNanos = -1;
        long resumeNanos = -1;
        long destinationDigest = 0;
        long digestAtPause = 0;
        long sealedAtPause = 0;
        String error = null;
        boolean verified = false;
        SourceControl control = null;
        PageChannels channels = null;
        PageSender requests = null;
        MemoryDigest sentDigest = null;
        PrecopyPhase precopy = null;
        PostcopyReport postcopyReport = null;
        long wireBytes = 0;
        long lostBytes = 0;
        long endNanos = -1;
        try {
            tls = new TlsCredentials(params.tlsCert(), params.tlsKey(), params.tlsCa(), params.tlsAllow(),
                    params.tlsProvider()).forSource(destination.getHostString());
            control = new SourceControl(connect(), params.peerTimeoutMillis());
            Wire.Welcome welcome = control.hello(new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE, memory.byteSize(),
                    Wire.mask(params.capabilities()), params.mode().ordinal(), params.channels(), params.migrationId()));
            accept(welcome);
            sentDigest = new MemoryDigest(memory.pageCount());
            channels = new PageChannels(joinPageChannels(sentDigest), memory.pageCount(), clock);
            if (negotiated.contains(Capability.POSTCOPY)) {
                requests = sender(params.channels(), join(params.channels()), sentDigest, false);
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
            precopy = new PrecopyPhase(params, dirtyLog, channels, control, clock, this::recordRound, listener);
            RoundPlanner.Step step = precopy.run(toSend, start, roundControl,
                    () -> postcopyRequested && postcopyNegotiated(),
                    bulk -> enter(bulk ? MigrationState.BULK : MigrationState.ITERATE));
            checkCancelled();
            Wire.Resumed resumed;
            if (step == RoundPlanner.Step.SWITCH_POSTCOPY) {
                enter(MigrationState.POSTCOPY);
                vm.pause();
                paused = true;
                pauseNanos = clock.nanoTime();
                dirtyLog.sync(toSend);
                postcopyStarted = true;
                long pages = toSend.cardinality();
                long bytesBefore = channels.bytesSent() + requests.link().bytesSent();
                long began = clock.nanoTime();
                PostcopySource postcopy = new PostcopySource(channels, requests, control, clock,
                        params.recoverTimeoutMillis(), this::reconnect);
                byte[] deviceState = vm.saveDeviceState();
                PostcopySource.Result result = postcopy.run(toSend, precopy.rounds() + 1, pauseNanos, deviceState,
                        sentDigest, session);
                sealedAtPause = PageDigest.seal(sentDigest.value(), deviceState, session);
                resumed = result.resumed();
                digestAtPause = sentDigest.value();
                long nanos = clock.nanoTime() - began;
                lostBytes = result.bytesOnLostLinks();
                long bytes = lostBytes + channels.bytesSent() + requests.link().bytesSent() - bytesBefore;
                recordRound(new RoundRecord(precopy.rounds() + 1, "postcopy", pages, bytes, nanos / 1e6, 0,
                        (long) DowntimeEstimator.bandwidth(bytes, nanos), 0, false, channels.compressionReason(), Map.of()));
                postcopyReport = new PostcopyReport(precopy.rounds(), 0, result.pagesRequested(), result.pagesPushed(),
                        nanos / 1e6, result.recoveries(), null, 0, 0, 0, List.of());
            } else {
                enter(MigrationState.STOP_AND_COPY);
                vm.pause();
                paused = true;
                pauseNanos = clock.nanoTime();
                precopy.stopAndCopy(toSend, roundControl);
                byte[] deviceState = vm.saveDeviceState();
                control.deviceState(deviceState);
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
            }
            destinationDigest = resumed.digest();
            if (destinationDigest != sealedAtPause) {
                // whatever resumed there is not what was sent: nobody knows which copy is good
                throw new ProtocolException(String.format("the destination answered RESUMED with digest %016x, not the"
                        + " %016x sent (memory and device state, this session)", destinationDigest, sealedAtPause));
            }
            resumeNanos = resumed.resumeNanos();
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
        }
        String vmState;
        if (state == MigrationState.COMPLETED) {
            vmState = "STOPPED";
        } else if (paused && postcopyStarted) {
            vmState = "PAUSED";
            error = "post-copy failed (" + error + "): the guest ran on the destination, so it stays paused here"
                    + " with the memory it had at the switch-over";
        } else if (paused && handedOver) {
            vmState = "PAUSED";
            error = "hand-over in doubt (" + error + "): the destination may have resumed, so the guest stays paused here";
        } else {
            if (paused) {
                vm.resume();
            }
            vmState = "RUNNING";
        }
        double lastExpectedMs = precopy == null ? -1 : precopy.expectedDowntimeMs();
        double downtimeMs = resumeNanos > 0 ? (resumeNanos - pauseNanos) / 1e6 : -1;
        metrics.switchover(lastExpectedMs, downtimeMs);
        long pages = rounds.stream().mapToLong(RoundRecord::pagesSent).sum();
        StageStats stats = channels == null ? StageStats.empty() : channels.stats();
        if (requests != null) {
            stats = stats.plus(requests.stats());
        }
        return new MigrationReport("source", params.mode(), memory.byteSize(), GuestMemory.PAGE_SIZE, state, verified,
                ((endNanos > 0 ? endNanos : clock.nanoTime()) - start) / 1e6, downtimeMs, lastExpectedMs,
                wireBytes + lostBytes, pages,
                List.copyOf(rounds), pagesByKind(stats), negotiated, error, vmState, state == MigrationState.COMPLETED,
                digestAtPause, postcopyReport);
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

    private Link connect() throws LinkException {
        return Link.connect(group, destination, tls, limiter, params.peerTimeoutMillis(), clock);
    }

    /** A connection joined to the session as {@code channel}. */
    private Link join(int channel) throws LinkException, ProtocolException {
        Link link = connect();
        try {
            SourceControl.join(link, new Wire.Join(session, channel, params.migrationId()), params.peerTimeoutMillis());
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
        return new PageSender(channel, link, memory, encoder, chooser, digest.part(), dirtyLog, clock);
    }

    /**
     * Connects the session anew after post-copy lost it (QEMU's postcopy recovery): RECOVER on a
     * new control connection, the destination's MISSING pages, then every channel joins again.
     */
    private List<Link> reconnect(PageBitmap missing) throws LinkException, ProtocolException {
        List<Link> links = new ArrayList<>();
        try {
            Link control = connect();
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
        metrics.sent(record.bytesSent(), record.pagesSent());
        metrics.round(record);
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
