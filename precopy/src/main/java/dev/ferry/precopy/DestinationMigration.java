package dev.ferry.precopy;

import dev.ferry.compression.MalformedPayloadException;
import dev.ferry.compression.PageDecoder;
import dev.ferry.compression.PageEncoding;
import dev.ferry.core.Capability;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MemoryDigest;
import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import dev.ferry.core.PageGate;
import dev.ferry.core.PostcopyReport;
import dev.ferry.postcopy.FaultLatency;
import dev.ferry.postcopy.PresentPages;
import dev.ferry.core.FaultMechanism;
import dev.ferry.postcopy.PageRequester;
import dev.ferry.postcopy.SoftwareFaults;
import dev.ferry.postcopy.UserfaultFaults;
import dev.ferry.postcopy.uffd.Userfaultfd;
import dev.ferry.core.VmControl;
import dev.ferry.transport.Frames;
import dev.ferry.transport.Link;
import dev.ferry.transport.ProtocolException;
import dev.ferry.transport.Wire;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.lang.foreign.MemorySegment;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.LongFunction;

/**
 * The destination side of a migration, as the last stage of its connection's pipeline (on the
 * event loop). It accepts one source, applies its pages, and resumes the guest only after a
 * verified END: the digest of every page as applied equals the source's digest at the pause.
 * Anything else (a malformed frame, a wrong handshake, a broken or silent connection) ends it
 * FAILED with the reason, and the guest is never resumed.
 */
@ChannelHandler.Sharable
public final class DestinationMigration extends ChannelInboundHandlerAdapter {
    private enum Phase { AWAIT_HELLO, RECEIVING, POSTCOPY, RECOVERING, DONE }

    private final LongFunction<GuestMemory> memoryForSize;
    private final VmControl vm;
    private final NanoClock clock;
    private final Set<Capability> supported;
    private final CompletableFuture<MigrationReport> result = new CompletableFuture<>();
    private final PageDecoder decoder = new PageDecoder();
    private final long[] pagesByEncoding = new long[16];

    private Phase phase = Phase.AWAIT_HELLO;
    private GuestMemory memory;
    private MemoryDigest digest;
    private PageBitmap written;
    private Set<Capability> negotiated = EnumSet.noneOf(Capability.class);
    private MigrationMode mode = MigrationMode.PRECOPY;
    private byte[] deviceState;
    private long startNanos;
    private long bytesReceived;
    private long pagesReceived;
    private PresentPages present;
    private final FaultLatency faultLatency;
    private final FaultMechanism faultMechanism;
    private volatile PageGate postcopyGate;
    private SoftwareFaults softwareFaults;
    private UserfaultFaults userfaultFaults;
    private String softwareReason;
    private GuestMemory scratch;
    private long pauseNanos = -1;
    private long resumeNanos = -1;
    private final long recoverTimeoutMillis;
    /** The connection of the source; every other one is a reconnection or refused. Event loop writes, guests read. */
    private volatile Channel current;
    private ScheduledFuture<?> recoveryTimer;
    private String lostReason;
    private int recoveries;
    private boolean released;

    /**
     * @param memoryForSize gives the guest memory for the size the source announces, or throws
     *                      IllegalArgumentException (with the reason) when it cannot
     * @param vm            loads the device state and resumes the guest once memory is verified
     * @param supported     the capabilities this destination accepts
     * @param faultMechanism how post-copy catches accesses to missing pages
     * @param recoverTimeoutMillis how long a link lost during post-copy may stay lost before the
     *                      guest is given up
     * @param registry      where the fault latency timer goes
     */
    public DestinationMigration(LongFunction<GuestMemory> memoryForSize, VmControl vm, NanoClock clock,
            Set<Capability> supported, FaultMechanism faultMechanism, long recoverTimeoutMillis, MeterRegistry registry) {
        this.faultLatency = new FaultLatency(registry);
        this.faultMechanism = faultMechanism;
        this.recoverTimeoutMillis = recoverTimeoutMillis;
        this.memoryForSize = memoryForSize;
        this.vm = vm;
        this.clock = clock;
        this.supported = EnumSet.copyOf(supported);
    }

    /** Completes with this side's report when the migration ends, either way. */
    public CompletableFuture<MigrationReport> result() {
        return result;
    }

    /** The guest memory, once the handshake has fixed it. */
    public GuestMemory memory() {
        return memory;
    }

    /**
     * Where guest threads on this side must check a page before touching it: open until post-copy
     * starts, then the software fault path that requests missing pages and waits for them.
     */
    public PageGate pageGate() {
        PageGate gate = postcopyGate;
        return gate != null ? gate : PageGate.OPEN;
    }

    /**
     * One handler serves every connection of this destination (they share its single event loop):
     * the first is the source's; while a post-copy link is lost, a connection that opens with
     * RECOVER takes its place; any other is refused.
     */
    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        if (phase == Phase.AWAIT_HELLO && current == null) {
            current = ctx.channel();
            startNanos = clock.nanoTime();
        }
        // any other connection is answered on its first frame, so that it reads why it is refused
        // (a silent one is dropped by the read timeout)
        ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf frame = (ByteBuf) msg;
        if (ctx.channel() != current) {
            try {
                reconnection(ctx, frame);
            } finally {
                frame.release();
            }
            return;
        }
        try {
            bytesReceived += frame.readableBytes() + 4;
            if (phase == Phase.DONE) {
                return;
            }
            if (!frame.isReadable()) {
                throw new ProtocolException("malformed frame: length 0 has no type");
            }
            int type = frame.readUnsignedByte();
            if (phase == Phase.AWAIT_HELLO) {
                if (type != Wire.HELLO) {
                    throw new ProtocolException("expected HELLO, got " + Wire.typeName(type));
                }
                hello(ctx, frame);
                return;
            }
            switch (type) {
                case Wire.PAGES -> pages(frame);
                case Wire.ROUND_END -> Wire.expectBody("ROUND_END", frame, 12);
                case Wire.DEVICE_STATE -> {
                    deviceState = new byte[frame.readableBytes()];
                    frame.readBytes(deviceState);
                }
                case Wire.END -> end(ctx, frame);
                case Wire.DISCARD -> discard(frame);
                case Wire.POSTCOPY_START -> postcopyStart(ctx, frame);
                case Wire.ERROR -> throw new ProtocolException("source failed: " + Wire.readError(frame));
                default -> throw new ProtocolException("unexpected " + Wire.typeName(type) + " frame from the source");
            }
        } catch (ProtocolException | MalformedPayloadException | RuntimeException e) {
            fail(e.getMessage() != null ? e.getMessage() : e.toString());
        } finally {
            frame.release();
        }
    }

    /** A frame on a connection that is not the source's: a RECOVER while recovering, or refused. */
    private void reconnection(ChannelHandlerContext ctx, ByteBuf frame) {
        if (phase != Phase.RECOVERING) {
            refuse(ctx, "this destination is already receiving a migration");
            return;
        }
        try {
            if (!frame.isReadable() || frame.readUnsignedByte() != Wire.RECOVER) {
                throw new ProtocolException("expected RECOVER on a reconnection during post-copy");
            }
            Wire.readRecover(frame);
        } catch (ProtocolException e) {
            refuse(ctx, e.getMessage());
            return;
        }
        current = ctx.channel();
        lowLatency(current);
        recoveryTimer.cancel(false);
        recoveries++;
        phase = Phase.POSTCOPY;
        // what this side still lacks, so the source resumes the push exactly there
        int maxRuns = Wire.PAGES_FRAME_TARGET / Wire.DISCARD_RUN;
        long page = present.nextMissing(0);
        while (page >= 0) {
            ByteBuf missing = ctx.alloc().buffer(Wire.FRAME_HEADER + maxRuns * Wire.DISCARD_RUN);
            int start = missing.writerIndex();
            Wire.writeHeader(missing, Wire.MISSING, 0);
            for (int runs = 0; runs < maxRuns && page >= 0; runs++) {
                long end = present.nextPresent(page);
                Wire.writeDiscardRun(missing, page, end - page);
                page = present.nextMissing(end);
            }
            Wire.patchLength(missing, start);
            ctx.write(missing);
        }
        ByteBuf recovered = ctx.alloc().buffer(Wire.FRAME_HEADER + 8);
        Wire.writeRecovered(recovered, present.missing());
        ctx.writeAndFlush(recovered);
    }

    /** What the source pushes must not pile up in our receive queue in front of a requested page. */
    private static void lowLatency(Channel channel) {
        channel.config().setOption(io.netty.channel.ChannelOption.SO_RCVBUF, Link.LOW_LATENCY_SOCKET_BUFFER);
    }

    private static void refuse(ChannelHandlerContext ctx, String reason) {
        ByteBuf error = ctx.alloc().buffer(64);
        Wire.writeError(error, reason);
        ctx.writeAndFlush(error).addListener(ChannelFutureListener.CLOSE);
    }

    private void hello(ChannelHandlerContext ctx, ByteBuf frame) throws ProtocolException {
        Wire.Hello hello = Wire.readHello(frame);
        if (hello.version() != Wire.VERSION) {
            throw new ProtocolException("source speaks protocol version " + hello.version() + ", this destination " + Wire.VERSION);
        }
        if (hello.pageSize() != GuestMemory.PAGE_SIZE) {
            throw new ProtocolException("source page size " + hello.pageSize() + ", this destination supports only " + GuestMemory.PAGE_SIZE);
        }
        if (hello.mode() >= MigrationMode.values().length) {
            throw new ProtocolException("unknown migration mode " + hello.mode());
        }
        try {
            memory = memoryForSize.apply(hello.memoryBytes());
        } catch (IllegalArgumentException e) {
            throw new ProtocolException(e.getMessage());
        }
        mode = MigrationMode.values()[hello.mode()];
        EnumSet<Capability> accepted = Capability.fromMask(hello.capabilities());
        accepted.retainAll(supported);
        negotiated = accepted;
        digest = new MemoryDigest(memory.pageCount());
        written = new PageBitmap(memory.pageCount());
        if (accepted.contains(Capability.POSTCOPY) && faultMechanism != FaultMechanism.SOFTWARE
                && Userfaultfd.available()) {
            UserfaultFaults.warmUp();
        }
        ByteBuf welcome = ctx.alloc().buffer(32);
        Wire.writeWelcome(welcome, Capability.mask(accepted));
        ctx.writeAndFlush(welcome);
        phase = Phase.RECEIVING;
    }

    private void pages(ByteBuf frame) throws ProtocolException, MalformedPayloadException {
        MemorySegment bytes = Frames.segmentOf(frame);
        long pageCount = memory.pageCount();
        while (frame.isReadable()) {
            if (frame.readableBytes() < Wire.RECORD_HEADER) {
                throw new ProtocolException("malformed PAGES frame: " + frame.readableBytes() + " bytes left, a record header needs " + Wire.RECORD_HEADER);
            }
            long index = frame.readLong();
            int encoding = frame.readUnsignedByte();
            int length = frame.readUnsignedShort();
            if (index < 0 || index >= pageCount) {
                throw new ProtocolException("page index " + index + " out of range (guest has " + pageCount + " pages)");
            }
            if (encoding == PageEncoding.ZERO) {
                if (length == 0 || index + length > pageCount) {
                    throw new ProtocolException("zero run of " + length + " pages at " + index + " does not fit " + pageCount + " pages");
                }
                for (long p = index; p < index + length; p++) {
                    if (phase != Phase.POSTCOPY) {
                        zeroPage(p);
                    } else if (!present.isPresent(p)) {
                        if (userfaultFaults != null) {
                            digest.updateZero(p);
                            userfaultFaults.installZero(p);
                        } else {
                            zeroPage(p);
                            present.markPresent(p);
                        }
                    }
                }
                pagesByEncoding[encoding] += length;
                pagesReceived += length;
                continue;
            }
            if (length > frame.readableBytes()) {
                throw new ProtocolException("page " + index + " payload of " + length + " bytes, frame has " + frame.readableBytes());
            }
            if (encoding >= pagesByEncoding.length) {
                throw new MalformedPayloadException("unknown page encoding " + encoding + " for page " + index);
            }
            if (phase == Phase.POSTCOPY && present.isPresent(index)) {
                // a requested page that the push had already sent, or the reverse: the first copy won
                frame.skipBytes(length);
                continue;
            }
            if (userfaultFaults != null && phase == Phase.POSTCOPY) {
                // registered memory is never touched from Java: decode aside, install atomically
                decoder.decode(encoding, 0, bytes, frame.readerIndex(), length, scratch);
                frame.skipBytes(length);
                digest.update(index, PageDigest.contentHash(scratch.segment(), 0));
                userfaultFaults.install(index, scratch.segment(), 0);
            } else {
                decoder.decode(encoding, index, bytes, frame.readerIndex(), length, memory);
                frame.skipBytes(length);
                digest.update(index, PageDigest.contentHash(memory.segment(), index << GuestMemory.PAGE_SHIFT));
                if (phase == Phase.POSTCOPY) {
                    present.markPresent(index);
                }
            }
            written.set(index);
            pagesByEncoding[encoding]++;
            pagesReceived++;
        }
    }

    /** Pages dirtied on the source since they were sent: stale here until they come again. */
    private void discard(ByteBuf frame) throws ProtocolException {
        if (!negotiated.contains(Capability.POSTCOPY)) {
            throw new ProtocolException("DISCARD without the postcopy capability");
        }
        if (frame.readableBytes() % Wire.DISCARD_RUN != 0) {
            throw new ProtocolException("malformed DISCARD frame: " + frame.readableBytes() + " bytes is not a whole number of runs");
        }
        if (present == null) {
            present = new PresentPages(memory.pageCount());
        }
        while (frame.isReadable()) {
            long first = frame.readLong();
            long count = frame.readUnsignedInt();
            if (first < 0 || count == 0 || first + count > memory.pageCount()) {
                throw new ProtocolException("discard run of " + count + " pages at " + first + " does not fit " + memory.pageCount() + " pages");
            }
            for (long p = first; p < first + count; p++) {
                present.markMissing(p);
            }
        }
    }

    /** The switch-over to post-copy: the guest runs here from now on, with the discarded pages missing. */
    private void postcopyStart(ChannelHandlerContext ctx, ByteBuf frame) throws ProtocolException {
        Wire.expectBody("POSTCOPY_START", frame, 8);
        if (!negotiated.contains(Capability.POSTCOPY)) {
            throw new ProtocolException("POSTCOPY_START without the postcopy capability");
        }
        if (deviceState == null) {
            throw new ProtocolException("POSTCOPY_START before DEVICE_STATE");
        }
        pauseNanos = frame.readLong();
        if (present == null) {
            present = new PresentPages(memory.pageCount());
        }
        PageRequester requester = page -> {
            Channel out = current;
            if (out != null && out.isActive()) {
                ByteBuf request = out.alloc().buffer(Wire.FRAME_HEADER + 8);
                Wire.writePageRequest(request, page);
                out.writeAndFlush(request);
            }
            // else the link is down: the fault path asks again until a reconnection serves it
        };
        startFaultPath(requester);
        lowLatency(ctx.channel());
        phase = Phase.POSTCOPY;
        vm.loadDeviceState(deviceState);
        vm.resume();
        resumeNanos = clock.nanoTime();
        ByteBuf running = ctx.alloc().buffer(Wire.FRAME_HEADER + 8);
        Wire.writePostcopyRunning(running, resumeNanos);
        ctx.writeAndFlush(running);
    }

    private void startFaultPath(PageRequester requester) {
        if (faultMechanism != FaultMechanism.SOFTWARE) {
            String unavailable = Userfaultfd.unavailableReason();
            if (unavailable == null) {
                try {
                    scratch = GuestMemory.anonymous(GuestMemory.PAGE_SIZE);
                    userfaultFaults = UserfaultFaults.start(memory, present, requester, faultLatency, clock);
                    postcopyGate = userfaultFaults;
                    return;
                } catch (RuntimeException e) {
                    unavailable = e.getMessage();
                }
            }
            if (faultMechanism == FaultMechanism.USERFAULTFD) {
                throw new IllegalStateException("userfaultfd was asked for and cannot be used: " + unavailable);
            }
            softwareReason = unavailable;
        }
        softwareFaults = new SoftwareFaults(present, requester, faultLatency, clock);
        postcopyGate = softwareFaults;
    }

    /** Untouched memory is already zero: skip the fill so a sparse guest stays sparse. */
    private void zeroPage(long index) throws MalformedPayloadException {
        if (written.clear(index)) {
            decoder.decode(PageEncoding.ZERO, index, memory.segment(), 0, 0, memory);
        }
        digest.updateZero(index);
    }

    private void end(ChannelHandlerContext ctx, ByteBuf frame) throws ProtocolException {
        Wire.expectBody("END", frame, 16);
        long sourceDigest = frame.readLong();
        long endPauseNanos = frame.readLong();
        if (deviceState == null) {
            throw new ProtocolException("END before DEVICE_STATE");
        }
        boolean postcopy = phase == Phase.POSTCOPY;
        if (postcopy && present.missing() > 0) {
            throw new ProtocolException("END with " + present.missing() + " pages still missing");
        }
        if (sourceDigest != digest.value()) {
            throw new ProtocolException(String.format("memory digest mismatch: source %016x, applied %016x; %s",
                    sourceDigest, digest.value(), postcopy ? "the guest runs on corrupt memory" : "not resuming"));
        }
        if (!postcopy) {
            pauseNanos = endPauseNanos;
            vm.loadDeviceState(deviceState);
            vm.resume();
            resumeNanos = clock.nanoTime();
        }
        phase = Phase.DONE;
        ByteBuf resumed = ctx.alloc().buffer(32);
        Wire.writeResumed(resumed, digest.value(), resumeNanos);
        ctx.writeAndFlush(resumed).addListener(ChannelFutureListener.CLOSE);
        if (userfaultFaults != null) {
            // every page is present: plain access is safe again
            userfaultFaults.close();
        }
        result.complete(report(MigrationState.COMPLETED, true, (resumeNanos - pauseNanos) / 1e6, null, true));
    }

    private void fail(String reason) {
        if (phase == Phase.DONE) {
            return;
        }
        boolean resumed = phase == Phase.POSTCOPY || phase == Phase.RECOVERING;
        if (resumed) {
            reason = "post-copy failed with " + present.missing() + " pages never received, so the guest cannot continue here: " + reason;
            present.fail(reason);
            if (userfaultFaults != null) {
                userfaultFaults.close();
            }
        }
        phase = Phase.DONE;
        Channel out = current;
        if (out != null && out.isActive()) {
            ByteBuf error = out.alloc().buffer(64);
            Wire.writeError(error, reason);
            out.writeAndFlush(error).addListener(ChannelFutureListener.CLOSE);
        }
        result.complete(report(MigrationState.FAILED, false, resumed ? (resumeNanos - pauseNanos) / 1e6 : -1, reason, resumed));
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (ctx.channel() == current) {
            if (phase == Phase.POSTCOPY) {
                lostReason = Frames.describe(cause);
            } else {
                fail(Frames.describe(cause));
            }
        }
        ctx.close();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (ctx.channel() != current) {
            return;
        }
        if (phase == Phase.POSTCOPY) {
            awaitReconnect(ctx, lostReason != null ? lostReason : "connection lost");
            return;
        }
        fail(phase == Phase.AWAIT_HELLO
                ? "connection closed before the handshake"
                : "connection lost before the end of the stream (" + pagesReceived + " pages received); not resuming");
        release();
    }

    /**
     * The link broke during post-copy: the guest lives on both hosts until the last page is here,
     * so nothing is given up yet. Guest accesses to missing pages stay blocked; the source has
     * {@code recoverTimeoutMillis} to reconnect (QEMU's postcopy recovery).
     */
    private void awaitReconnect(ChannelHandlerContext ctx, String reason) {
        phase = Phase.RECOVERING;
        current = null;
        lostReason = null;
        recoveryTimer = ctx.executor().schedule(() -> {
            if (phase == Phase.RECOVERING) {
                fail("the link was lost (" + reason + ") and the source did not reconnect within "
                        + recoverTimeoutMillis + " ms");
                release();
            }
        }, recoverTimeoutMillis, TimeUnit.MILLISECONDS);
    }

    /** Frees what the migration held, once it is over for good. */
    private void release() {
        if (released) {
            return;
        }
        released = true;
        if (digest != null) {
            digest.close();
        }
        decoder.close();
    }

    private MigrationReport report(MigrationState outcome, boolean verified, double downtimeMs, String error, boolean resumed) {
        Map<String, Long> kinds = new LinkedHashMap<>();
        for (int code = 0; code < pagesByEncoding.length; code++) {
            if (pagesByEncoding[code] > 0) {
                kinds.put(PageEncoding.name(code), pagesByEncoding[code]);
            }
        }
        return new MigrationReport("destination", mode, memory == null ? 0 : memory.byteSize(), GuestMemory.PAGE_SIZE,
                outcome, verified, (clock.nanoTime() - startNanos) / 1e6, downtimeMs, -1, bytesReceived, pagesReceived,
                List.of(), kinds, negotiated, error, null, resumed, digest == null ? 0 : digest.value(), postcopyReport());
    }

    private PostcopyReport postcopyReport() {
        if (postcopyGate == null) {
            return null;
        }
        long faultCount = userfaultFaults != null ? userfaultFaults.faults() : softwareFaults.faults();
        String mechanism = userfaultFaults != null ? "userfaultfd"
                : softwareReason == null ? "software" : "software (userfaultfd: " + softwareReason + ")";
        return new PostcopyReport(0, faultCount, 0, 0, 0, recoveries, mechanism, faultLatency.quantile(0.5),
                faultLatency.quantile(0.99), faultLatency.max(), faultLatency.histogram());
    }
}
