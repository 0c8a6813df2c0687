package dev.ferry.precopy;

import dev.ferry.compression.PageEncoder;
import dev.ferry.compression.CompressionChooser;
import dev.ferry.compression.PageEncoding;
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
import dev.ferry.core.RoundRecord;
import dev.ferry.core.VmControl;
import dev.ferry.transport.Link;
import dev.ferry.transport.LinkException;
import dev.ferry.transport.ProtocolException;
import dev.ferry.transport.Wire;
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
    private boolean streamComplete;
    private double lastExpectedMs = -1;
    private PageEncoder encoder;
    private CompressionChooser chooser;
    private StageStats chunkStats;
    private long chunkStart;
    private long chunkBytes;

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

    /** Asks the migration to stop; it ends CANCELLED unless the hand-over already began. */
    public void cancel() {
        cancelRequested = true;
    }

    /** Runs the migration to its end and reports it; never throws for a migration failure. */
    public MigrationReport run() {
        long start = clock.nanoTime();
        long pauseNanos = -1;
        long resumeNanos = -1;
        long destinationDigest = 0;
        String error = null;
        boolean verified = false;
        Link link = null;
        PageStreamWriter writer = null;
        MemoryDigest sentDigest = null;
        long digestAtPause = 0;
        long wireBytes = 0;
        try {
            link = Link.connect(group, destination, params.maxBandwidth(), params.peerTimeoutMillis(), clock);
            handshake(link);
            sentDigest = new MemoryDigest(memory.pageCount());
            encoder = new PageEncoder(negotiated, params);
            chooser = negotiated.contains(Capability.LZ4) || negotiated.contains(Capability.ZSTD)
                    ? new CompressionChooser() : null;
            encoder.compressEvery(chooser == null || !params.adaptiveCompression() ? 1 : chooser.current().compressEvery());
            writer = new PageStreamWriter(link, memory, encoder, sentDigest, listener);
            PageBitmap toSend = new PageBitmap(memory.pageCount());

            enter(MigrationState.BULK);
            dirtyLog.sync(toSend);
            toSend.setAll();
            int round = 1;
            sendRound(link, writer, toSend, round, "bulk");
            encoder.xbzrleActive(true);
            while (true) {
                RoundRecord last = rounds.getLast();
                RoundPlanner.Step step = planner.next(round, last.expectedDowntimeMs(), clock.nanoTime() - start);
                lastExpectedMs = last.expectedDowntimeMs();
                if (step != RoundPlanner.Step.ITERATE) {
                    break;
                }
                enter(MigrationState.ITERATE);
                sendRound(link, writer, toSend, ++round, "iterate");
            }
            checkCancelled();

            enter(MigrationState.STOP_AND_COPY);
            vm.pause();
            paused = true;
            pauseNanos = clock.nanoTime();
            dirtyLog.sync(toSend);
            sendRound(link, writer, toSend, ++round, "stop-and-copy");
            ByteBuf tail = link.buffer(64 * 1024);
            Wire.writeDeviceState(tail, vm.saveDeviceState());
            digestAtPause = sentDigest.value();
            Wire.writeEnd(tail, digestAtPause, pauseNanos);
            link.sendNow(tail);
            streamComplete = true;

            long[] resumed = awaitResumed(link);
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
                wireBytes = link.bytesSent();
                link.close();
            }
            if (sentDigest != null) {
                sentDigest.close();
            }
        }
        String vmState;
        if (state == MigrationState.COMPLETED) {
            vmState = "STOPPED";
        } else if (paused && streamComplete) {
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
                digestAtPause);
    }

    private void handshake(Link link) throws LinkException, ProtocolException {
        ByteBuf hello = link.buffer(64);
        Wire.writeHello(hello, new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE, memory.byteSize(),
                Capability.mask(params.capabilities()), params.mode().ordinal()));
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
            if ((accepted & ~Capability.mask(params.capabilities())) != 0) {
                throw new ProtocolException("destination accepted capabilities that were not offered: " + Capability.fromMask(accepted));
            }
            negotiated = Capability.fromMask(accepted);
        } finally {
            reply.release();
        }
    }

    private long[] awaitResumed(Link link) throws LinkException, ProtocolException {
        ByteBuf reply = awaitFrame(link, "RESUMED");
        try {
            int type = reply.readUnsignedByte();
            if (type == Wire.ERROR) {
                streamComplete = false;
                throw new ProtocolException("destination did not resume: " + Wire.readError(reply));
            }
            if (type != Wire.RESUMED) {
                throw new ProtocolException("expected RESUMED, got " + Wire.typeName(type));
            }
            Wire.expectBody("RESUMED", reply, 16);
            return new long[] {reply.readLong(), reply.readLong()};
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
        startChunk(link, began);
        long pages = writer.sendRound(toSend, round, () -> cancelRequested && !paused, () -> adaptCompression(link));
        long nanos = clock.nanoTime() - began;
        long bytes = link.bytesSent() - before;
        StageStats stats = encoder.stats().minus(statsBefore);
        long dirty = kind.equals("stop-and-copy") ? 0 : dirtyLog.sync(toSend);
        double expected = DowntimeEstimator.expectedDowntimeMillis(dirty, pages, bytes, nanos);
        long bandwidth = (long) DowntimeEstimator.bandwidth(bytes, nanos);
        adaptCompression(link);
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

    private void startChunk(Link link, long now) {
        chunkStart = now;
        chunkBytes = link.bytesSent();
        chunkStats = encoder.stats();
    }

    /**
     * The adaptive choice, made every chunk of a round rather than once a round: the bulk round
     * is most of the bytes, so it must be able to switch compression on (a slow link) or off
     * (loopback) as soon as the first chunks have measured both sides.
     */
    private void adaptCompression(Link link) {
        if (chooser == null || !params.adaptiveCompression()) {
            return;
        }
        long now = clock.nanoTime();
        StageStats chunk = encoder.stats().minus(chunkStats);
        if (chunk.pages() == 0) {
            return;
        }
        long nanos = now - chunkStart;
        CompressionChooser.Decision decision = chooser.next(chunk.triedPayloadBytes(), nanos, chunk.triedBeforeBytes(),
                chunk.compressNanos(), (long) DowntimeEstimator.bandwidth(link.bytesSent() - chunkBytes, nanos));
        encoder.compressEvery(decision.compressEvery());
        startChunk(link, now);
    }

    private String compressionReason() {
        if (chooser == null) {
            return "no compressor negotiated";
        }
        return params.adaptiveCompression() ? chooser.current().reason() : "always on (adaptive choice off)";
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
