package dev.ferry.transport;

import dev.ferry.protocol.Wire;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import java.net.InetSocketAddress;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The destination's listening socket: each accepted connection gets a read timeout that any
 * byte resets (a source silent past the peer timeout is dead: see {@link Liveness}), the framing
 * stage and a handler of the caller's, which starts the heartbeats once it knows the connection.
 */
public final class LinkServer implements AutoCloseable {
    /**
     * The destination's socket receive buffer. Left to autotuning, loopback grows it to tens of
     * MiB in front of a destination slower than its source; everything in it is data the
     * source counts as sent. Round durations, the bandwidth the downtime estimate divides by and
     * the adaptive compression choice's per-chunk rates would then describe data sent seconds
     * earlier, and a stop-and-copy would first wait for that backlog. 1 MiB still covers
     * 1 GB/s at 1 ms of round trip.
     */
    static final int RECEIVE_BUFFER = 1 << 20;
    /**
     * The largest read. Netty's default allocator pools buffers of up to 1 MiB; a larger guess
     * is a fresh direct buffer per read, zeroed and faulted in: 4% of both cores' samples in the
     * bulk round of a 1 GiB raw guest when reads could grow to 4 MiB. 1 MiB still holds eight
     * whole PAGES frames, so framing rarely copies.
     */
    public static final int MAX_READ = 1 << 20;
    /** The smallest read Netty's allocator adapts down to; the first guess is the largest. */
    private static final int SMALLEST_READ = 64 << 10;

    private final Channel channel;

    private LinkServer(Channel channel) {
        this.channel = channel;
    }

    /** Listens on {@code address} (port 0 picks a free one), in plaintext. */
    public static LinkServer bind(EventLoopGroup group, InetSocketAddress address, long peerTimeoutMillis,
            Supplier<ChannelHandler> handlers) throws LinkException {
        return bind(group, address, peerTimeoutMillis, null, reason -> { }, MAX_READ, handlers);
    }

    /**
     * Listens on {@code address}; with {@code tls} (null for plaintext) every connection is mutual
     * TLS, and its frames reach {@code handlers} only once its peer is allowed. A refused
     * connection is closed, and its address and the reason go to {@code refusals} (on an event
     * loop: return quickly). A read takes at most {@code largestRead} bytes: {@link #MAX_READ} but
     * for the warm-up, whose small reads bring the read path to C2 in fewer bytes.
     */
    public static LinkServer bind(EventLoopGroup group, InetSocketAddress address, long peerTimeoutMillis, Tls tls,
            Consumer<String> refusals, int largestRead, Supplier<ChannelHandler> handlers) throws LinkException {
        ServerBootstrap bootstrap = new ServerBootstrap()
                .group(group)
                .channel(Transports.serverChannel())
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childOption(ChannelOption.SO_RCVBUF, RECEIVE_BUFFER)
                .childOption(ChannelOption.RCVBUF_ALLOCATOR, new AdaptiveRecvByteBufAllocator(
                        Math.min(SMALLEST_READ, largestRead), largestRead, largestRead))
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        // first: the read timeout is reset by any bytes, TLS records included
                        ch.pipeline().addLast(Liveness.readTimeout(peerTimeoutMillis));
                        if (tls != null) {
                            ch.pipeline().addLast(new TlsRequired(refusals), tls.handler(ch.alloc(), null, peerTimeoutMillis),
                                    new PeerCheck(tls, refusals));
                        }
                        ch.pipeline().addLast(Wire.handshakeFrameDecoder(), handlers.get());
                    }
                });
        try {
            return new LinkServer(bootstrap.bind(address).sync().channel());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LinkException("interrupted while binding " + address);
        } catch (Exception e) {
            // Netty rethrows the bind's IOException (address in use) unchecked
            throw new LinkException("cannot listen on " + address + ": " + e.getMessage(), e);
        }
    }

    /** The bound address (with the real port when 0 was asked for). */
    public InetSocketAddress localAddress() {
        return (InetSocketAddress) channel.localAddress();
    }

    /** Stops accepting connections. */
    @Override
    public void close() {
        io.netty.channel.ChannelFuture closed = channel.close();
        if (!channel.eventLoop().inEventLoop()) {
            closed.awaitUninterruptibly(1000);
        }
    }
}
