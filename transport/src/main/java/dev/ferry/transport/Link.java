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

    private final Channel channel;
    private final Inbound inbound;
    private final BandwidthLimiter limiter;
    private final NanoClock clock;
    private final long peerTimeoutNanos;
    private long bytesSent;
    private long waitedNanos;

    private Link(Channel channel, Inbound inbound, BandwidthLimiter limiter, long peerTimeoutMillis, NanoClock clock) {
        this.channel = channel;
        this.inbound = inbound;
        this.limiter = limiter;
        this.clock = clock;
        this.peerTimeoutNanos = TimeUnit.MILLISECONDS.toNanos(peerTimeoutMillis);
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
        return new Link(connect.channel(), inbound, limiter, peerTimeoutMillis, clock);
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
        channel.write(frames, channel.voidPromise());
        bytesSent += bytes;
    }

    /**
     * Sends a frame someone is blocked on (a requested page during post-copy) at once: it counts
     * against {@code max-bandwidth}, so the push behind it waits the longer, but it never waits
     * for the pacing itself.
     */
    public void sendUrgent(ByteBuf frames) throws LinkException {
        limiter.charge(frames.readableBytes(), clock.nanoTime());
        try {
            awaitWritable();
        } catch (LinkException e) {
            frames.release();
            throw e;
        }
        bytesSent += frames.readableBytes();
        channel.writeAndFlush(frames, channel.voidPromise());
    }

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
        channel.config().setWriteBufferWaterMark(new WriteBufferWaterMark(16 << 10, 64 << 10));
        // the kernel's send queue too: on loopback it grows to megabytes, milliseconds ahead of a request
        channel.config().setOption(ChannelOption.SO_SNDBUF, LOW_LATENCY_SOCKET_BUFFER);
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
            frame = inbound.frames.poll(timeoutNanos, TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LinkException("interrupted while waiting for the peer");
        }
        if (frame == CLOSED) {
            inbound.frames.offer(CLOSED);
            throw new LinkException(inbound.closeReason());
        }
        return frame;
    }

    /** The next frame if one has already arrived, else null. */
    public ByteBuf poll() throws LinkException {
        return receive(0);
    }

    /** Whether the connection is still open. */
    public boolean isOpen() {
        return channel.isActive();
    }

    /** Closes the connection. */
    @Override
    public void close() {
        channel.close().awaitUninterruptibly(1000);
        ByteBuf frame;
        while ((frame = inbound.frames.poll()) != null) {
            if (frame != CLOSED) {
                frame.release();
            }
        }
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
                    throw new LinkException(inbound.closeReason());
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

    /** Queues inbound frames and wakes the sender on writability changes or close. */
    private static final class Inbound extends ChannelInboundHandlerAdapter {
        final LinkedBlockingQueue<ByteBuf> frames = new LinkedBlockingQueue<>();
        private volatile String failure;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf frame = (ByteBuf) msg;
            if (frame.isReadable() && frame.getUnsignedByte(frame.readerIndex()) == Wire.HEARTBEAT) {
                // the peer is alive, which the read timeout has already noted; nothing for the receiver
                try {
                    Wire.readHeartbeat(frame.skipBytes(1));
                } catch (dev.ferry.protocol.ProtocolException e) {
                    exceptionCaught(ctx, e);
                } finally {
                    frame.release();
                }
                return;
            }
            if (frame.isReadable() && frame.getUnsignedByte(frame.readerIndex()) == Wire.ERROR && failure == null) {
                failure = "peer reported: " + Wire.readError(frame.duplicate().skipBytes(1));
            }
            frames.offer(frame);
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
            frames.offer(CLOSED);
            synchronized (this) {
                notifyAll();
            }
        }

        String closeReason() {
            String f = failure;
            return f != null ? f : "connection closed by the peer";
        }
    }
}
