package dev.ferry.transport;

import dev.ferry.protocol.Wire;
import dev.ferry.core.NanoClock;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.handler.ssl.SslHandler;
import java.net.InetSocketAddress;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The source's end of a connection, driven by one sending thread: it paces frames to
 * {@code max-bandwidth}, blocks while the socket is not writable (Netty's writability is the flow
 * control), and hands frames from the peer to {@link #receive}. Both ends send heartbeats
 * ({@link Liveness}) and a peer silent past the peer timeout fails the link, as does every wait
 * here past it, so a dead peer turns into a {@link LinkException}, never a hang.
 */
public final class Link implements AutoCloseable {
    /** Little queued in front of the socket: see {@link LinkServer#RECEIVE_BUFFER} for why. */
    private static final int LOW_WATER = 256 << 10;
    private static final int HIGH_WATER = 1 << 20;
    private static final ByteBuf CLOSED = io.netty.buffer.Unpooled.EMPTY_BUFFER;

    /** The guest of a link that is the connection's own, not a gang member's on a shared one. */
    private static final int OWN = 0;

    private final Channel channel;
    /** The connection's: writability, its failure, and the inboxes of the guests that share it. */
    private final Inbound inbound;
    /** This link's frames from the peer. */
    private final Inbox inbox;
    /** The gang member whose frames this link carries in GUEST frames, or {@link #OWN}. */
    private final int guest;
    private final BandwidthLimiter limiter;
    private final NanoClock clock;
    private final long peerTimeoutNanos;
    private long bytesSent;
    private long waitedNanos;

    private Link(Channel channel, Inbound inbound, Inbox inbox, int guest, BandwidthLimiter limiter, long peerTimeoutNanos,
            NanoClock clock) {
        this.channel = channel;
        this.inbound = inbound;
        this.inbox = inbox;
        this.guest = guest;
        this.limiter = limiter;
        this.clock = clock;
        this.peerTimeoutNanos = peerTimeoutNanos;
    }

    /**
     * Connects to a destination; fails within {@code peerTimeoutMillis}. Links of one migration
     * share one {@code limiter}: {@code max-bandwidth} is the migration's, not a connection's.
     */
    public static Link connect(EventLoopGroup group, InetSocketAddress address, BandwidthLimiter limiter,
            long peerTimeoutMillis, NanoClock clock) throws LinkException {
        return connect(group, address, null, limiter, peerTimeoutMillis, clock);
    }

    /**
     * Connects as {@link #connect(EventLoopGroup, InetSocketAddress, BandwidthLimiter, long, NanoClock)}
     * does; with {@code tls} (null for plaintext) over mutual TLS, returning only once the
     * handshake is done and the destination's certificate names are allowed.
     */
    public static Link connect(EventLoopGroup group, InetSocketAddress address, Tls tls, BandwidthLimiter limiter,
            long peerTimeoutMillis, NanoClock clock) throws LinkException {
        Inbound inbound = new Inbound();
        Bootstrap bootstrap = new Bootstrap()
                .group(group)
                .channel(Transports.socketChannel())
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.min(Integer.MAX_VALUE, peerTimeoutMillis))
                .option(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(LOW_WATER, HIGH_WATER))
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        // first: the read timeout is reset by any bytes, TLS records included
                        ch.pipeline().addLast(Liveness.readTimeout(peerTimeoutMillis));
                        if (tls != null) {
                            ch.pipeline().addLast(tls.handler(ch.alloc(), address, peerTimeoutMillis));
                        }
                        ch.pipeline().addLast(Wire.frameDecoder(), inbound);
                        Liveness.heartbeat(ch, peerTimeoutMillis);
                    }
                });
        ChannelFuture connect = bootstrap.connect(address);
        if (!connect.awaitUninterruptibly(peerTimeoutMillis + 1000)) {
            connect.channel().close();
            throw new LinkException("connect to " + address + " timed out after " + peerTimeoutMillis + " ms");
        }
        if (!connect.isSuccess()) {
            throw new LinkException("cannot connect to " + address + ": " + connect.cause().getMessage(), connect.cause());
        }
        if (tls != null) {
            verify(connect.channel(), address, tls, peerTimeoutMillis);
        }
        return new Link(connect.channel(), inbound, inbound.own, OWN, limiter, TimeUnit.MILLISECONDS.toNanos(peerTimeoutMillis),
                clock);
    }

    /**
     * A link for gang member {@code guest} on this connection, which its members share: what it
     * sends crosses in GUEST frames naming the guest, and it receives only that guest's frames.
     * The connection closes when the last of its guests' links does; null when it is closed or
     * closing (the caller connects anew). This connection's own {@link #send} and
     * {@link #receive} are then not used.
     */
    public Link guest(int guest) {
        if (guest <= OWN || guest > 0xFFFF) {
            throw new IllegalArgumentException("a gang member is 1..65535, got " + guest);
        }
        Inbox box = inbound.open(guest, channel);
        return box == null ? null : new Link(channel, inbound, box, guest, limiter, peerTimeoutNanos, clock);
    }

    /** Waits for the TLS handshake and checks the destination's names; closes the connection if either fails. */
    private static void verify(Channel channel, InetSocketAddress address, Tls tls, long peerTimeoutMillis)
            throws LinkException {
        SslHandler ssl = channel.pipeline().get(SslHandler.class);
        io.netty.util.concurrent.Future<Channel> handshake = ssl.handshakeFuture();
        String failure = null;
        if (!handshake.awaitUninterruptibly(peerTimeoutMillis + 1000)) {
            failure = "TLS handshake with " + address + " timed out after " + peerTimeoutMillis + " ms";
        } else if (!handshake.isSuccess()) {
            failure = "TLS handshake with " + address + " failed: " + Frames.describe(handshake.cause());
        } else {
            String refusal = tls.refusal(ssl.engine().getSession());
            if (refusal != null) {
                failure = "TLS: refused the destination at " + address + ": " + refusal + " " + tls.allowed();
            }
        }
        if (failure != null) {
            channel.close().awaitUninterruptibly(1000);
            throw new LinkException(failure, handshake.cause());
        }
    }

    /** A direct buffer from the channel's pool for the caller to fill with frames. */
    public ByteBuf buffer(int capacity) {
        return channel.alloc().directBuffer(capacity);
    }

    /**
     * Queues {@code frames} (whole frames) for the wire, waiting first for the pacing and for the
     * socket to drain. Takes ownership of the buffer.
     */
    public void send(ByteBuf frames) throws LinkException {
        int bytes = frames.readableBytes();
        try {
            long generation = limiter.generation();
            long wait = limiter.charge(bytes, clock.nanoTime());
            if (wait > 0) {
                channel.flush();
                waitedNanos += sleep(wait, generation);
            }
            awaitWritable();
        } catch (LinkException e) {
            frames.release();
            throw e;
        }
        write(frames);
    }

    /** Writes {@code frames} as they are, or in GUEST frames for a gang member's link. */
    private void write(ByteBuf frames) {
        if (guest == OWN) {
            bytesSent += frames.readableBytes();
            channel.write(frames, channel.voidPromise());
            return;
        }
        // one GUEST frame carries at most one full-sized frame: larger sends are cut at frame boundaries
        while (frames.readableBytes() > MAX_GUEST_BODY) {
            int cut = 0;
            int next;
            while ((next = cut + Integer.BYTES + frames.getInt(frames.readerIndex() + cut)) <= MAX_GUEST_BODY) {
                cut = next;
            }
            writeGuest(frames.readRetainedSlice(cut));
        }
        writeGuest(frames);
    }

    /** The most of a guest's frames one GUEST frame carries. */
    private static final int MAX_GUEST_BODY = Wire.MAX_GUEST_FRAME - 3;

    private void writeGuest(ByteBuf frames) {
        bytesSent += Wire.GUEST_HEADER + frames.readableBytes();
        // one write: another guest's sending thread may be writing to the connection too
        channel.write(Wire.guestFrame(channel.alloc(), guest, frames), channel.voidPromise());
    }

    /**
     * Sends a frame someone is blocked on (a requested page during post-copy) at once: it counts
     * against {@code max-bandwidth}, so the push behind it waits the longer, but it never waits
     * for the pacing itself.
     */
    public void sendUrgent(ByteBuf frames) throws LinkException {
        limiter.charge(frames.readableBytes(), clock.nanoTime());
        // on the event loop (an answer from onArrival's callee) it cannot wait for the loop to drain
        // the socket: such answers are one per request, so what they queue is bounded by the peer
        if (!channel.eventLoop().inEventLoop()) {
            try {
                awaitWritable();
            } catch (LinkException e) {
                frames.release();
                throw e;
            }
        }
        write(frames);
        channel.flush();
    }

    /** What takes a link's frames as they arrive, on the connection's event loop ({@link #onArrival}). */
    public interface Arrivals {
        /** A frame from the peer, its type byte first; the callee releases it, and must not block. */
        void frame(ByteBuf frame);

        /** The connection closed, for {@code reason}; no frame follows. */
        void closed(String reason);
    }

    /**
     * Hands this link's frames to {@code arrivals} on the connection's event loop as each arrives,
     * those already queued first, instead of queueing them for {@link #receive}; null queues them
     * again. Returns once the loop has switched (at most {@link #SWITCH_WAIT_MILLIS}): after
     * {@code onArrival(null)} the previous callee gets nothing more. For frames that must be
     * answered at once (post-copy's page requests): no thread is woken between the read and the
     * answer, which on two busy cores was a scheduler's wait each way.
     */
    public void onArrival(Arrivals arrivals) {
        Arrivals callee = arrivals == null ? null : new Arrivals() {
            @Override
            public void frame(ByteBuf frame) {
                arrivals.frame(frame);
            }

            @Override
            public void closed(String reason) {
                arrivals.closed(closeReason());
            }
        };
        if (channel.eventLoop().inEventLoop()) {
            inbox.handTo(callee);
            return;
        }
        try {
            channel.eventLoop().submit(() -> inbox.handTo(callee)).awaitUninterruptibly(SWITCH_WAIT_MILLIS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // the loop is gone, and the connection with it
            inbox.handTo(callee);
        }
    }

    /** The longest {@link #onArrival} waits for the event loop to take the switch. */
    private static final long SWITCH_WAIT_MILLIS = 1_000;

    /** Sends and flushes. */
    public void sendNow(ByteBuf frames) throws LinkException {
        send(frames);
        flush();
    }

    /**
     * Keeps less queued in front of the socket, so that an urgent frame (a requested page during
     * post-copy) waits behind little: throughput matters less than latency from here on.
     */
    public void lowLatency() {
        try {
            channel.config().setWriteBufferWaterMark(new WriteBufferWaterMark(16 << 10, 64 << 10));
            // the kernel's send queue too: on loopback it grows to megabytes, milliseconds ahead of a request
            channel.config().setOption(ChannelOption.SO_SNDBUF, LOW_LATENCY_SOCKET_BUFFER);
        } catch (io.netty.channel.ChannelException e) {
            // closed meanwhile (a gang's connection another member's loss closed): the next send or receive says so
        }
    }

    /** Socket buffer of a connection that favours latency (post-copy): a few pushed batches. */
    public static final int LOW_LATENCY_SOCKET_BUFFER = 128 << 10;

    /** Pushes queued frames to the socket. */
    public void flush() {
        channel.flush();
    }

    /**
     * How long the sending thread has waited so far, for the pacing or for a full socket: the part
     * of its time that less data to send could save, where the rest is its own work.
     */
    public long waitedNanos() {
        return waitedNanos;
    }

    /**
     * Bytes sent but not yet acknowledged by the peer: queued in front of the socket, in the
     * kernel (where the socket says, native epoll), in a shaping queue or on the wire. Called
     * between rounds; not per page.
     */
    public long queuedBytes() {
        long pending = channel.isWritable() ? HIGH_WATER - channel.bytesBeforeUnwritable() : HIGH_WATER;
        return Math.max(0, pending) + SendQueue.unacknowledged(channel);
    }

    /** Bytes handed to the wire so far (frame headers included). */
    public long bytesSent() {
        return bytesSent;
    }

    /**
     * The next frame from the peer (its type byte first; the caller releases it), waiting up to
     * {@code timeoutNanos}; null when none arrived in time.
     */
    public ByteBuf receive(long timeoutNanos) throws LinkException {
        ByteBuf frame;
        try {
            frame = inbox.frames.poll(timeoutNanos, TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LinkException("interrupted while waiting for the peer");
        }
        if (frame == CLOSED) {
            inbox.frames.offer(CLOSED);
            throw new LinkException(closeReason());
        }
        return frame;
    }

    /** The next frame if one has already arrived, else null. */
    public ByteBuf poll() throws LinkException {
        return receive(0);
    }

    /** Whether the connection is still open. */
    public boolean isOpen() {
        return channel.isActive() && !inbox.closed;
    }

    /**
     * Closes the connection; a gang member's link tells the peer its guest's connection closed, and
     * closes the connection only when no other guest's link is left on it.
     */
    @Override
    public void close() {
        if (guest == OWN || inbound.close(guest, inbox)) {
            channel.close().awaitUninterruptibly(1000);
        } else if (channel.isActive()) {
            ByteBuf end = channel.alloc().directBuffer(Wire.GUEST_HEADER);
            Wire.writeGuestHeader(end, guest, 0);
            channel.writeAndFlush(end).awaitUninterruptibly(1000);
        }
        inbox.drain();
    }

    private String closeReason() {
        String f = inbox.failure != null ? inbox.failure : inbound.failure;
        return f != null ? f : "connection closed by the peer";
    }

    private void awaitWritable() throws LinkException {
        if (channel.isWritable()) {
            return;
        }
        channel.flush();
        long began = clock.nanoTime();
        long deadline = began + peerTimeoutNanos;
        try {
            awaitWritableUntil(deadline);
        } finally {
            waitedNanos += clock.nanoTime() - began;
        }
    }

    private void awaitWritableUntil(long deadline) throws LinkException {
        synchronized (inbound) {
            while (!channel.isWritable()) {
                if (!channel.isActive()) {
                    throw new LinkException(closeReason());
                }
                long left = deadline - clock.nanoTime();
                if (left <= 0) {
                    throw new LinkException("peer stopped reading: socket not writable for "
                            + TimeUnit.NANOSECONDS.toMillis(peerTimeoutNanos) + " ms");
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(inbound, Math.min(left, 50_000_000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new LinkException("interrupted while waiting for the socket to drain");
                }
            }
        }
    }

    /**
     * Waits {@code nanos} for the pacing, or less once the limiter's rate changed: a sender that
     * waits at a rate no longer in force goes on at once. Returns the time waited.
     */
    private long sleep(long nanos, long generation) {
        long began = clock.nanoTime();
        long deadline = began + nanos;
        for (long left = nanos; left > 0 && limiter.generation() == generation; left = deadline - clock.nanoTime()) {
            LockSupport.parkNanos(Math.min(left, RATE_CHECK_NANOS));
        }
        return clock.nanoTime() - began;
    }

    /** How often a pacing wait looks whether the rate changed: a frame at a low rate waits long. */
    private static final long RATE_CHECK_NANOS = 2_000_000;

    /** Frames from the peer for one link, with why the peer closed it, if it said. */
    private static final class Inbox {
        final LinkedBlockingQueue<ByteBuf> frames = new LinkedBlockingQueue<>();
        volatile String failure;
        volatile boolean closed;
        /** Whether the peer said this guest's connection closed (an empty GUEST frame). */
        volatile boolean peerEnded;
        /** Who takes the frames as they arrive instead of the queue, or null; read and written on the event loop only. */
        private Arrivals arrivals;

        void deliver(ByteBuf frame) {
            int type = frame.isReadable() ? frame.getUnsignedByte(frame.readerIndex()) : -1;
            if (type == Wire.HEARTBEAT) {
                // the peer is alive, which the read timeout has already noted; nothing for the receiver
                frame.release();
                return;
            }
            if (type == Wire.ERROR && failure == null) {
                failure = "peer reported: " + Wire.readError(frame.duplicate().skipBytes(1));
            }
            if (arrivals != null) {
                arrivals.frame(frame);
                return;
            }
            frames.offer(frame);
        }

        void close(String reason) {
            if (failure == null && reason != null) {
                failure = reason;
            }
            closed = true;
            frames.offer(CLOSED);
            if (arrivals != null) {
                arrivals.closed(failure);
            }
        }

        /** From now on frames go to {@code next} (null: to the queue), what is queued first; on the event loop. */
        void handTo(Arrivals next) {
            arrivals = next;
            if (next == null) {
                return;
            }
            for (ByteBuf frame = frames.poll(); frame != null; frame = frames.poll()) {
                if (frame == CLOSED) {
                    frames.offer(CLOSED);
                    next.closed(failure);
                    return;
                }
                next.frame(frame);
            }
        }

        void drain() {
            ByteBuf frame;
            while ((frame = frames.poll()) != null) {
                if (frame != CLOSED) {
                    frame.release();
                }
            }
        }
    }

    /**
     * Queues inbound frames, a shared connection's for each guest by its GUEST frames, and wakes
     * the senders on writability changes or close.
     */
    private static final class Inbound extends ChannelInboundHandlerAdapter {
        final Inbox own = new Inbox();
        /** The inboxes of the gang members sharing this connection; guarded by this. */
        private final java.util.Map<Integer, Inbox> guests = new java.util.concurrent.ConcurrentHashMap<>();
        /**
         * Guests whose link here closed before the peer said it closed its end: until it does, what
         * arrives for them is the old link's, and a new link for them goes on another connection.
         */
        private final java.util.Set<Integer> closingGuests = java.util.concurrent.ConcurrentHashMap.newKeySet();
        /** Whether guests share this connection; once they did, it closes with the last of them. */
        private boolean shared;
        private boolean closing;
        volatile String failure;

        synchronized Inbox open(int guest, Channel channel) {
            if (closing || !channel.isActive() || closingGuests.contains(guest)) {
                return null;
            }
            if (guests.containsKey(guest)) {
                throw new IllegalStateException("guest " + guest + " already has a link on this connection");
            }
            shared = true;
            Inbox box = new Inbox();
            guests.put(guest, box);
            return box;
        }

        /** Forgets {@code guest}'s link; true when it was the last, and the connection is to close. */
        synchronized boolean close(int guest, Inbox box) {
            if (guests.remove(guest, box) && !box.peerEnded) {
                closingGuests.add(guest);
            }
            box.closed = true;
            closing = guests.isEmpty();
            return closing;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf frame = (ByteBuf) msg;
            int type = frame.isReadable() ? frame.getUnsignedByte(frame.readerIndex()) : -1;
            if (type == Wire.HEARTBEAT) {
                try {
                    Wire.readHeartbeat(frame.skipBytes(1));
                } catch (dev.ferry.protocol.ProtocolException e) {
                    exceptionCaught(ctx, e);
                } finally {
                    frame.release();
                }
                return;
            }
            if (type == Wire.GUEST) {
                try {
                    int guest = Wire.readGuest(frame.skipBytes(1));
                    Inbox box = guests.get(guest);
                    if (!frame.isReadable()) {
                        if (box != null) {
                            box.peerEnded = true;
                            box.close("the peer closed this guest's connection");
                        } else {
                            closingGuests.remove(guest);
                        }
                        return;
                    }
                    if (box == null) {
                        // a guest whose link here closed: what was on its way to it is no longer wanted
                        return;
                    }
                    Wire.forEachFrame(frame, box::deliver);
                } catch (dev.ferry.protocol.ProtocolException e) {
                    exceptionCaught(ctx, e);
                } finally {
                    frame.release();
                }
                return;
            }
            if (type == Wire.ERROR && failure == null) {
                failure = "peer reported: " + Wire.readError(frame.duplicate().skipBytes(1));
            }
            if (shared) {
                // the connection's own frame where its guests share it: only ever the peer refusing it
                frame.release();
                ctx.close();
                return;
            }
            own.deliver(frame);
        }

        /**
         * Wakes the sender only when the channel became writable: with TLS the pending bytes move
         * between the TLS handler's queue and the socket's a record at a time, and writability
         * flips around the high water mark far more often than the sender needs to hear of it.
         * Nothing behind this handler listens for writability.
         */
        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            if (ctx.channel().isWritable()) {
                synchronized (this) {
                    notifyAll();
                }
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (failure == null) {
                failure = "link failed: " + Frames.describe(cause);
            }
            ctx.close();
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            own.close(null);
            for (Inbox box : guests.values()) {
                box.close(null);
            }
            synchronized (this) {
                closing = true;
                notifyAll();
            }
        }
    }
}
