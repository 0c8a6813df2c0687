package dev.ferry.precopy;

import dev.ferry.compression.PageEncoder;
import dev.ferry.compression.CompressionChooser;
import dev.ferry.protocol.PageEncoding;
import dev.ferry.compression.StageStats;
import dev.ferry.core.Capability;
import dev.ferry.core.DirtyLog;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MemoryDigest;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.MigrationMetrics;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import dev.ferry.core.PostcopyReport;
import dev.ferry.core.RoundRecord;
import dev.ferry.core.VmControl;
import dev.ferry.transport.Link;
import dev.ferry.transport.LinkException;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.PageRuns;
import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoopGroup;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The source side of a pre-copy migration: the state machine of the design sketch, run on the
 * caller's thread.
 *
 * <pre>
 * SETUP ──> BULK ──> ITERATE ──> STOP_AND_COPY ──> COMPLETED
 *   └─────────┴─────────┴────────────┴──> FAILED | CANCELLED
 * </pre>
 * On FAILED and CANCELLED the guest runs on the source as before: it is resumed if it had been
 * paused, and its memory is never written. The one exception is a link lost after the whole
 * stream went out but before the destination answered: the destination may have resumed, so
 * the guest stays paused here ({@code PAUSED}, "hand-over in doubt") for the manager to decide.
 */
public final class SourceMigration {
    private final GuestMemory memory;
    private final DirtyLog dirtyLog;
    private final VmControl vm;
    private final MigrationParameters params;
    private final InetSocketAddress destination;
    private final EventLoopGroup group;
    private final NanoClock clock;
    private final MigrationMetrics metrics;
    private final MigrationListener listener;
    private final RoundPlanner planner;
    private final List<RoundRecord> rounds = new ArrayList<>();

    private volatile MigrationState state = MigrationState.SETUP;
    private volatile boolean cancelRequested;
    private Set<Capability> negotiated = EnumSet.noneOf(Capability.class);
    private boolean paused;
    private boolean handedOver;
    private volatile boolean postcopyRequested;
    private boolean postcopyStarted;
    private long postcopyPauseNanos;
    private PostcopyReport postcopyReport;
    /** The connection to the destination; replaced when post-copy recovers a lost one. */
    private Link link;
    private long bytesOnLostLinks;
    private int recoveries;
    private static final long RECOVER_RETRY_NANOS = 200_000_000L;
    private double lastExpectedMs = -1;
    private PageEncoder encoder;
    private CompressionChooser chooser;
    private StageStats chunkStats;
    private long chunkWaited;
    private long chunkStart;

    public SourceMigration(GuestMemory memory, DirtyLog dirtyLog, VmControl vm, MigrationParameters params,
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
        this.planner = new RoundPlanner(params);
    }

    /** The current state. */
    public MigrationState state() {
        return state;
    }

    /**
     * Asks the migration to stop; it ends CANCELLED unless the hand-over already began.
     *
     * @throws IllegalStateException during post-copy: the guest already ran on the destination and
     *                               cannot be given back to the source
     */
    public void cancel() {
        if (state == MigrationState.POSTCOPY) {
            throw new IllegalStateException("cannot cancel during post-copy: the guest already runs on the destination"
                    + " and its newest pages exist only there");
        }
        cancelRequested = true;
    }

    /**
     * Asks a running pre-copy migration to switch to post-copy now (QEMU's
     * {@code migrate-start-postcopy}): the round in progress stops at its next frame. Needs the
     * postcopy capability, offered and accepted.
     */
    public void startPostcopy() {
        if (!params.capabilities().contains(Capability.POSTCOPY)) {
            throw new IllegalStateException("post-copy was not offered: add the postcopy capability to the parameters");
        }
        postcopyRequested = true;
    }

    /** Runs the migration to its end and reports it; never throws for a migration failure. */
    public MigrationReport run() {
        long start = clock.nanoTime();
        long pauseNanos = -1;
        long resumeNanos = -1;
        long destinationDigest = 0;
        String error = null;
        boolean verified = false;
        PageStreamWriter writer = null;
        MemoryDigest sentDigest = null;
        long digestAtPause = 0;
        long wireBytes = 0;
        try {
            link = Link.connect(group, destination, params.maxBandwidth(), params.peerTimeoutMillis(), clock);
            handshake(link);
            sentDigest = new MemoryDigest(memory.pageCount());
            encoder = new PageEncoder(negotiated, params);
            // the chooser only exists when it has something to choose
            chooser = params.adaptiveCompression() && compressorNegotiated() ? new CompressionChooser() : null;
            encoder.compressOneIn(chooser == null ? 1 : chooser.current().compressOneIn());
            writer = new PageStreamWriter(link, memory, encoder, sentDigest, listener);
            PageBitmap toSend = new PageBitmap(memory.pageCount());

            enter(MigrationState.BULK);
            dirtyLog.sync(toSend);
            toSend.setAll();
            int round = 1;
            sendRound(link, writer, toSend, round, "bulk");
            encoder.xbzrleActive(true);
            RoundPlanner.Step step;
            while (true) {
                RoundRecord last = rounds.getLast();
                long previousDirty = rounds.size() > 1 ? rounds.get(rounds.size() - 2).dirtyPages() : -1;
                step = planner.next(round, last.expectedDowntimeMs(), clock.nanoTime() - start, last.dirtyPages(),
                        previousDirty, postcopyRequested && postcopyNegotiated());
                lastExpectedMs = last.expectedDowntimeMs();
                if (step != RoundPlanner.Step.ITERATE) {
                    break;
                }
                enter(MigrationState.ITERATE);
                sendRound(link, writer, toSend, ++round, "iterate");
            }
            checkCancelled();

            long[] resumed;
            if (step == RoundPlanner.Step.SWITCH_POSTCOPY) {
                resumed = postcopy(writer, toSend, round, sentDigest);
                pauseNanos = postcopyPauseNanos;
                digestAtPause = sentDigest.value();
            } else {
                enter(MigrationState.STOP_AND_COPY);
                vm.pause();
                paused = true;
                pauseNanos = clock.nanoTime();
                dirtyLog.sync(toSend);
                encoder.lastPass();
                if (chooser != null) {
                    encoder.compressOneIn(chooser.lastRound().compressOneIn());
                }
                sendRound(link, writer, toSend, ++round, "stop-and-copy");
                ByteBuf tail = link.buffer(64 * 1024);
                Wire.writeDeviceState(tail, vm.saveDeviceState());
                link.sendNow(tail);
                digestAtPause = sentDigest.value();
                sendEnd(digestAtPause, pauseNanos);
                handedOver = true;
                resumed = awaitResumed(link, null);
            }
            destinationDigest = resumed[0];
            resumeNanos = resumed[1];
            enter(MigrationState.COMPLETED);
            long scanned = PageDigest.scan(memory);
            verified = destinationDigest == digestAtPause && scanned == digestAtPause;
            if (!verified) {
                error = String.format("verification failed: sent digest %016x, destination %016x, source memory %016x",
                        digestAtPause, destinationDigest, scanned);
            }
        } catch (CancelledException e) {
            error = e.getMessage();
            enter(MigrationState.CANCELLED);
        } catch (LinkException | ProtocolException | RuntimeException e) {
            error = describe(e);
            enter(MigrationState.FAILED);
        } finally {
            if (writer != null) {
                writer.close();
            }
            if (encoder != null) {
                encoder.close();
            }
            if (link != null) {
                wireBytes = bytesOnLostLinks + link.bytesSent();
                link.close();
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
        double downtimeMs = resumeNanos > 0 ? (resumeNanos - pauseNanos) / 1e6 : -1;
        metrics.switchover(lastExpectedMs, downtimeMs);
        long bytes = wireBytes;
        long pages = rounds.stream().mapToLong(RoundRecord::pagesSent).sum();
        return new MigrationReport("source", params.mode(), memory.byteSize(), GuestMemory.PAGE_SIZE, state, verified,
                (clock.nanoTime() - start) / 1e6, downtimeMs, lastExpectedMs, bytes, pages, List.copyOf(rounds),
                pagesByKind(encoder), negotiated, error, vmState, state == MigrationState.COMPLETED,
                digestAtPause, postcopyReport);
    }

    /**
     * The switch to post-copy: pause, tell the destination which pages it holds stale copies of,
     * send the device state and let it resume; then push what it lacks, serving its requests first,
     * and end as a pre-copy does. A link lost on the way is recovered: the guest already runs on
     * the destination and only this side has its missing pages.
     *
     * @return the destination's RESUMED: digest as applied, resume instant
     */
    private long[] postcopy(PageStreamWriter writer, PageBitmap toSend, int round, MemoryDigest sentDigest)
            throws LinkException, ProtocolException {
        enter(MigrationState.POSTCOPY);
        vm.pause();
        paused = true;
        postcopyPauseNanos = clock.nanoTime();
        dirtyLog.sync(toSend);
        writer.sendDiscard(toSend);
        ByteBuf start = link.buffer(64 * 1024);
        Wire.writeDeviceState(start, vm.saveDeviceState());
        Wire.writePostcopyStart(start, postcopyPauseNanos);
        postcopyStarted = true;
        link.sendNow(start);
        // the destination may have dropped its stale copies: deltas against them are no use
        encoder.xbzrleActive(false);
        link.lowLatency();
        long began = clock.nanoTime();
        long bytesBefore = bytesOnLostLinks + link.bytesSent();
        long pages = toSend.cardinality();
        PostcopyPush push = new PostcopyPush(link, writer, toSend);
        long[] resumed;
        while (true) {
            try {
                push.run();
                sendEnd(sentDigest.value(), postcopyPauseNanos);
                resumed = awaitResumed(link, push);
                break;
            } catch (LinkException e) {
                recover(e, writer, push, toSend);
            }
        }
        long nanos = clock.nanoTime() - began;
        long bytes = bytesOnLostLinks + link.bytesSent() - bytesBefore;
        RoundRecord record = new RoundRecord(round + 1, "postcopy", pages, bytes, nanos / 1e6, 0,
                (long) DowntimeEstimator.bandwidth(bytes, nanos), 0, false, compressionReason(), Map.of());
        rounds.add(record);
        metrics.sent(bytes, pages);
        metrics.round(record);
        listener.onRound(record);
        postcopyReport = new PostcopyReport(round, 0, push.pagesRequested(), push.pagesPushed(), nanos / 1e6,
                recoveries, null, 0, 0, 0, List.of());
        return resumed;
    }

    /**
     * Reconnects after a link lost during post-copy (QEMU's postcopy recovery): until
     * {@code recover-timeout} runs out, connect again, send RECOVER, and take the destination's
     * MISSING pages as what is left to push. A second loss during this handshake just means another
     * attempt.
     */
    private void recover(LinkException cause, PageStreamWriter writer, PostcopyPush push, PageBitmap remaining)
            throws LinkException {
        bytesOnLostLinks += link.bytesSent();
        link.close();
        long deadline = clock.nanoTime() + TimeUnit.MILLISECONDS.toNanos(params.recoverTimeoutMillis());
        String last = cause.getMessage();
        while (clock.nanoTime() < deadline) {
            Link candidate = null;
            try {
                candidate = Link.connect(group, destination, params.maxBandwidth(), params.peerTimeoutMillis(), clock);
                ByteBuf recover = candidate.buffer(Wire.FRAME_HEADER + 8);
                Wire.writeRecover(recover);
                candidate.sendNow(recover);
                readMissing(candidate, remaining);
                candidate.lowLatency();
                link = candidate;
                writer.relink(candidate);
                push.relink(candidate);
                recoveries++;
                return;
            } catch (LinkException | ProtocolException e) {
                // the destination may not have noticed the old link is gone yet, or the new one broke too
                last = e.getMessage();
                if (candidate != null) {
                    bytesOnLostLinks += candidate.bytesSent();
                    candidate.close();
                }
                java.util.concurrent.locks.LockSupport.parkNanos(Math.max(0, Math.min(RECOVER_RETRY_NANOS,
                        deadline - clock.nanoTime())));
            }
        }
        throw new LinkException("post-copy link lost (" + cause.getMessage() + ") and not recovered within "
                + params.recoverTimeoutMillis() + " ms; last attempt: " + last);
    }

    /** Reads MISSING runs into {@code remaining} until RECOVERED, which must count the same pages. */
    private void readMissing(Link candidate, PageBitmap remaining) throws LinkException, ProtocolException {
        remaining.clearAll();
        while (true) {
            ByteBuf frame = awaitFrame(candidate, "RECOVERED");
            try {
                int type = frame.readUnsignedByte();
                switch (type) {
                    case Wire.MISSING -> PageRuns.read("MISSING", frame, remaining.pageCount(), (first, count) -> {
                        for (long p = first; p < first + count; p++) {
                            remaining.set(p);
                        }
                    });
                    case Wire.RECOVERED -> {
                        long missing = Wire.readRecovered(frame);
                        if (missing != remaining.cardinality()) {
                            throw new ProtocolException("RECOVERED counts " + missing + " missing pages, the runs "
                                    + remaining.cardinality());
                        }
                        return;
                    }
                    case Wire.ERROR -> throw new ProtocolException("destination refused the recovery: " + Wire.readError(frame));
                    default -> {
                        // requests from before the break are answered by the push of what is missing
                    }
                }
            } finally {
                frame.release();
            }
        }
    }

    private void sendEnd(long digest, long pauseNanos) throws LinkException {
        ByteBuf end = link.buffer(Wire.FRAME_HEADER + 16);
        Wire.writeEnd(end, digest, pauseNanos);
        link.sendNow(end);
    }

    private boolean postcopyNegotiated() {
        return negotiated.contains(Capability.POSTCOPY);
    }

    private void handshake(Link link) throws LinkException, ProtocolException {
        ByteBuf hello = link.buffer(64);
        Wire.writeHello(hello, new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE, memory.byteSize(),
                Wire.mask(params.capabilities()), params.mode().ordinal()));
        link.sendNow(hello);
        ByteBuf reply = awaitFrame(link, "WELCOME");
        try {
            int type = reply.readUnsignedByte();
            if (type == Wire.ERROR) {
                throw new ProtocolException("destination refused the migration: " + Wire.readError(reply));
            }
            if (type != Wire.WELCOME) {
                throw new ProtocolException("expected WELCOME, got " + Wire.typeName(type));
            }
            int accepted = Wire.readWelcome(reply);
            if ((accepted & ~Wire.mask(params.capabilities())) != 0) {
                throw new ProtocolException("destination accepted capabilities that were not offered: " + Wire.capabilities(accepted));
            }
            negotiated = Wire.capabilities(accepted);
            if (params.mode() != dev.ferry.core.MigrationMode.PRECOPY && !negotiated.contains(Capability.POSTCOPY)) {
                throw new ProtocolException("the " + params.mode().name().toLowerCase(java.util.Locale.ROOT)
                        + " mode needs post-copy, which the destination did not accept (or it was not offered)");
            }
        } finally {
            reply.release();
        }
    }

    /** Waits for RESUMED; during post-copy, late page requests and POSTCOPY_RUNNING may come first. */
    private long[] awaitResumed(Link link, PostcopyPush push) throws LinkException, ProtocolException {
        ByteBuf reply = awaitFrame(link, "RESUMED");
        while (push != null && reply.getUnsignedByte(reply.readerIndex()) != Wire.RESUMED
                && reply.getUnsignedByte(reply.readerIndex()) != Wire.ERROR) {
            try {
                push.handle(reply);
            } finally {
                reply.release();
            }
            reply = awaitFrame(link, "RESUMED");
        }
        try {
            int type = reply.readUnsignedByte();
            if (type == Wire.ERROR) {
                handedOver = false;
                throw new ProtocolException("destination did not resume: " + Wire.readError(reply));
            }
            if (type != Wire.RESUMED) {
                throw new ProtocolException("expected RESUMED, got " + Wire.typeName(type));
            }
            Wire.Resumed resumed = Wire.readResumed(reply);
            return new long[] {resumed.digest(), resumed.resumeNanos()};
        } finally {
            reply.release();
        }
    }

    private ByteBuf awaitFrame(Link link, String what) throws LinkException, ProtocolException {
        ByteBuf frame = link.receive(TimeUnit.MILLISECONDS.toNanos(params.peerTimeoutMillis()));
        if (frame == null) {
            throw new LinkException("no " + what + " from the destination within " + params.peerTimeoutMillis() + " ms");
        }
        if (!frame.isReadable()) {
            frame.release();
            throw new ProtocolException("empty frame from the destination");
        }
        return frame;
    }

    private void sendRound(Link link, PageStreamWriter writer, PageBitmap toSend, int round, String kind)
            throws LinkException, CancelledException, ProtocolException {
        checkCancelled();
        checkPeer(link);
        long before = link.bytesSent();
        StageStats statsBefore = encoder.stats();
        long began = clock.nanoTime();
        startChunk(began);
        long pages = writer.sendRound(toSend, round, new RoundControl() {
            @Override
            public boolean cancelled() {
                return cancelRequested && !paused;
            }

            @Override
            public boolean stopEarly() {
                return postcopyRequested && !paused && postcopyNegotiated();
            }

            @Override
            public void afterChunk() {
                adaptCompression();
            }
        });
        long nanos = clock.nanoTime() - began;
        long bytes = link.bytesSent() - before;
        StageStats stats = encoder.stats().minus(statsBefore);
        long dirty = kind.equals("stop-and-copy") ? 0 : dirtyLog.sync(toSend);
        double expected = DowntimeEstimator.expectedDowntimeMillis(dirty, pages, bytes, nanos);
        long bandwidth = (long) DowntimeEstimator.bandwidth(bytes, nanos);
        adaptCompression();
        Map<String, Long> saved = new LinkedHashMap<>();
        for (int code = 0; code < PageEncoding.COUNT; code++) {
            if (stats.bytesSavedOf(code) != 0) {
                saved.put(PageEncoding.name(code), stats.bytesSavedOf(code));
            }
        }
        RoundRecord record = new RoundRecord(round, kind, pages, bytes, nanos / 1e6, dirty, bandwidth, expected,
                stats.compressNanos() > 0, compressionReason(), saved);
        rounds.add(record);
        metrics.sent(bytes, pages);
        metrics.round(record);
        listener.onRound(record);
    }

    /** A destination that refused mid-stream says so with an ERROR frame; surface it now. */
    private static void checkPeer(Link link) throws LinkException, ProtocolException {
        ByteBuf frame = link.poll();
        if (frame == null) {
            return;
        }
        try {
            int type = frame.isReadable() ? frame.readUnsignedByte() : -1;
            if (type == Wire.ERROR) {
                throw new ProtocolException("destination failed: " + Wire.readError(frame));
            }
            throw new ProtocolException("unexpected " + Wire.typeName(type) + " from the destination during the stream");
        } finally {
            frame.release();
        }
    }

    private void checkCancelled() throws CancelledException {
        if (cancelRequested && !paused) {
            throw new CancelledException();
        }
    }

    private void enter(MigrationState next) {
        state = next;
        listener.onState(next);
    }

    private void startChunk(long now) {
        chunkStart = now;
        chunkWaited = link.waitedNanos();
        chunkStats = encoder.stats();
    }

    /**
     * The adaptive choice, made every chunk of a round rather than once a round: the bulk round
     * is most of the bytes, so it must be able to switch compression on (a slow link) or off
     * (loopback) as soon as the first chunks have measured both.
     */
    private void adaptCompression() {
        if (chooser == null) {
            return;
        }
        long now = clock.nanoTime();
        StageStats chunk = encoder.stats().minus(chunkStats);
        if (chunk.pages() == 0) {
            return;
        }
        long nanos = now - chunkStart;
        CompressionChooser.Decision decision = chooser.next(chunk, nanos,
                Math.max(0, link.waitedNanos() - chunkWaited));
        encoder.compressOneIn(decision.compressOneIn());
        startChunk(now);
    }

    private String compressionReason() {
        if (chooser != null) {
            return chooser.current().reason();
        }
        return compressorNegotiated() ? "always on (adaptive choice off)" : "no compressor negotiated";
    }

    private boolean compressorNegotiated() {
        return negotiated.contains(Capability.LZ4) || negotiated.contains(Capability.ZSTD);
    }

    private static Map<String, Long> pagesByKind(PageEncoder encoder) {
        Map<String, Long> kinds = new LinkedHashMap<>();
        if (encoder != null) {
            StageStats stats = encoder.stats();
            for (int code = 0; code < PageEncoding.COUNT; code++) {
                if (stats.pagesOf(code) > 0) {
                    kinds.put(PageEncoding.name(code), stats.pagesOf(code));
                }
            }
        }
        return kinds;
    }

    private static String describe(Exception e) {
        return e.getMessage() != null ? e.getMessage() : e.toString();
    }
}
