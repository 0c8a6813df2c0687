package dev.ferry.engine;

import dev.ferry.compression.MalformedPayloadException;
import dev.ferry.postcopy.PostcopyDestination;
import dev.ferry.protocol.PageRuns;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import dev.ferry.transport.Frames;
import dev.ferry.transport.PendingConnections;
import dev.ferry.transport.Link;
import dev.ferry.transport.Liveness;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.DuplexChannel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The destination's Netty end, one handler for every connection: it only turns frames into calls
 * on the {@link DestinationSession} and the session's answers into frames. A connection's first
 * frame says what it is: HELLO opens the control connection, JOIN a page or request channel,
 * RECOVER a new control connection of a post-copy session that lost its connections; anything
 * else, or any of these the session does not expect, is refused with the reason. A connection
 * that has not said what it is within the handshake timeout is closed; at most
 * {@code max-pending-connections} may be that far at once. Both sides send HEARTBEAT on every
 * connection of the session, and a read timeout that any byte resets watches each of them.
 *
 * <p>Control frames run in order on a thread of their own (the session may wait there for the
 * page channels at a round's barrier); page frames run on their connection's event loop.
 */
@ChannelHandler.Sharable
final class DestinationHandler extends ChannelInboundHandlerAdapter implements DestinationSession.SourcePeer {
    private static final AttributeKey<Integer> ROLE = AttributeKey.valueOf("ferry.role");
    /** The role of the control connection; page channels are 0..channels-1, the request channel {@code channels}. */
    private static final int CONTROL = -1;
    private static final int REFUSED = -2;

    private final DestinationSession session;
    private final java.util.function.Consumer<String> refusals;
    private final long peerTimeoutMillis;
    /** Connections open that have not said what they are yet: a stranger's cost is bounded by their number. */
    private final PendingConnections pending;
    private final ExecutorService control;
    private final ChannelGroup connections = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
    private volatile Channel controlChannel;
    /** Whether a connection was taken as the control connection by its HELLO: connections arrive on several loops. */
    private final java.util.concurrent.atomic.AtomicBoolean helloTaken = new java.util.concurrent.atomic.AtomicBoolean();
    private volatile Channel requestChannel;

    DestinationHandler(DestinationSession session, int maxPending, long handshakeTimeoutMillis, long peerTimeoutMillis,
            java.util.function.Consumer<String> refusals) {
        this.session = session;
        this.pending = new PendingConnections(maxPending, handshakeTimeoutMillis);
        this.peerTimeoutMillis = peerTimeoutMillis;
        this.refusals = refusals;
        this.control = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "ferry-destination-control");
            t.setDaemon(true);
            return t;
        });
        session.peer(this);
        session.result().whenComplete((report, error) -> control.shutdown());
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        Channel channel = ctx.channel();
        // the handshake deadline: a connection still pending then, trickling bytes or silent, is closed and forgotten
        if (!pending.admit(channel, () -> {
            channel.attr(ROLE).set(REFUSED);
            channel.close();
        })) {
            channel.attr(ROLE).set(REFUSED);
            ctx.close();
            return;
        }
        ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf frame = (ByteBuf) msg;
        Integer role = ctx.channel().attr(ROLE).get();
        if (role == null) {
            first(ctx, frame);
            return;
        }
        if (role == REFUSED) {
            frame.release();
            return;
        }
        if (frame.isReadable() && frame.getUnsignedByte(frame.readerIndex()) == Wire.HEARTBEAT) {
            // the source is alive, which the read timeout has already noted
            try {
                Wire.readHeartbeat(frame.skipBytes(1));
            } catch (ProtocolException e) {
                session.fail(e.getMessage());
            } finally {
                frame.release();
            }
            return;
        }
        if (role == CONTROL) {
            session.frameBytes(frame.readableBytes() + 4L);
            if (!onControlThread(() -> {
                try {
                    controlFrame(frame);
                } finally {
                    frame.release();
                }
            })) {
                // the session ended and answered; its connections close after that answer
                frame.release();
            }
            return;
        }
        try {
            pageFrame(role, frame);
        } catch (ProtocolException | MalformedPayloadException | RuntimeException e) {
            session.fail(e.getMessage() != null ? e.getMessage() : e.toString());
        } finally {
            frame.release();
        }
    }

    /** The first frame of a connection: what it is. */
    private void first(ChannelHandlerContext ctx, ByteBuf frame) {
        Channel channel = ctx.channel();
        pending.settle(channel);
        long size = frame.readableBytes() + 4L;
        int type = frame.isReadable() ? frame.getUnsignedByte(frame.readerIndex()) : -1;
        if (type == Wire.HELLO && session.awaitingHello()) {
            String refusal = helloRefusal(frame);
            if (refusal != null) {
                // another migration's source: refused on its own, this destination waits on for its own
                refuse(channel, refusal);
                frame.release();
                return;
            }
        }
        if (type == Wire.HELLO && session.awaitingHello() && helloTaken.compareAndSet(false, true)) {
            adopt(channel, CONTROL);
            controlChannel = channel;
            channelRead(ctx, frame);
            return;
        }
        try {
            switch (type) {
                case Wire.JOIN -> {
                    frame.skipBytes(1);
                    Wire.Join join = Wire.readJoin(frame);
                    session.frameBytes(size);
                    session.join(join);
                    adopt(channel, join.channel());
                    if (join.channel() == session.channels()) {
                        requestChannel = channel;
                        // what this side sends there must not wait behind anything
                        channel.config().setOption(ChannelOption.SO_RCVBUF, Link.LOW_LATENCY_SOCKET_BUFFER);
                    }
                    ByteBuf joined = ctx.alloc().buffer(Wire.FRAME_HEADER + 2);
                    Wire.writeJoined(joined, join.channel());
                    ctx.writeAndFlush(joined);
                }
                case Wire.RECOVER -> {
                    frame.skipBytes(1);
                    Wire.Recover recover = Wire.readRecover(frame);
                    session.frameBytes(size);
                    // checked and answered on the control thread, in order with what the old connection left
                    boolean queued = onControlThread(() -> {
                        try {
                            session.checkRecover(recover);
                        } catch (ProtocolException e) {
                            refuse(channel, e.getMessage());
                            return;
                        }
                        // adopted first: the answer, MISSING, goes out on it
                        adopt(channel, CONTROL);
                        controlChannel = channel;
                        session.recover();
                        if (!channel.isActive()) {
                            // it closed before it was adopted, so its close went unnoticed: the session is lost again
                            lost("connection closed during the recovery");
                        }
                    });
                    if (!queued) {
                        refuse(channel, "RECOVER while the session is " + session.state());
                    }
                }
                case Wire.HELLO -> throw new ProtocolException("this destination is already receiving a migration");
                default -> throw new ProtocolException("expected HELLO, JOIN or RECOVER as a connection's first frame, got "
                        + (type < 0 ? "an empty frame" : Wire.typeName(type)));
            }
        } catch (ProtocolException e) {
            refuse(channel, e.getMessage());
        } finally {
            frame.release();
        }
    }

    /**
     * Runs {@code task} on the control thread, in order with what went before; false once the
     * session ended. Its answer (RESUMED or ERROR) is then on its way and the connections close
     * after it: a frame arriving meanwhile must not close one first, or the answer is lost (a
     * gang member's source then never heard that the guest was not resumed here).
     */
    private boolean onControlThread(Runnable task) {
        try {
            control.execute(task);
            return true;
        } catch (RejectedExecutionException ended) {
            return false;
        }
    }

    /** The connection is part of the session: from now on this side says it is alive on it too. */
    private void adopt(Channel channel, int role) {
        channel.attr(ROLE).set(role);
        connections.add(channel);
        Liveness.heartbeat(channel, peerTimeoutMillis);
    }

    private void controlFrame(ByteBuf frame) {
        try {
            if (!frame.isReadable()) {
                throw new ProtocolException("malformed frame: length 0 has no type");
            }
            int type = frame.readUnsignedByte();
            switch (type) {
                case Wire.HELLO -> hello(frame);
                case Wire.ROUND_END -> session.roundEnd(Wire.readRoundEnd(frame));
                case Wire.DEVICE_STATE -> session.deviceState(Wire.readDeviceState(frame));
                case Wire.DISCARD -> PageRuns.read("DISCARD", frame, session.memory().pageCount(), session::discard);
                case Wire.POSTCOPY_START -> session.postcopyStart(Wire.readPostcopyStart(frame));
                case Wire.END -> session.end(Wire.readEnd(frame));
                case Wire.ERROR -> throw new ProtocolException("source failed: " + Wire.readError(frame));
                default -> throw new ProtocolException("unexpected " + Wire.typeName(type) + " frame on the control connection");
            }
        } catch (DestinationSession.Abandoned e) {
            // the lost connection's own task, queued behind this one, says what happens
        } catch (ProtocolException | RuntimeException e) {
            session.fail(e.getMessage() != null ? e.getMessage() : e.toString());
        }
    }

    /**
     * The HELLO of the connection that took the control connection's place: one the session
     * refuses (a bad magic, version, size...) is answered with the reason and forgotten, and
     * the destination goes on waiting for its source.
     */
    private void hello(ByteBuf frame) throws ProtocolException {
        Channel channel = controlChannel;
        try {
            session.hello(Wire.readHello(frame));
        } catch (ProtocolException e) {
            if (!session.awaitingHello()) {
                throw e;
            }
            forget(channel);
            refuse(channel, e.getMessage());
        }
    }

    /** A connection that took the control connection's place but never finished the handshake: as if it never came. */
    private void forget(Channel channel) {
        channel.attr(ROLE).set(REFUSED);
        connections.remove(channel);
        if (controlChannel == channel) {
            controlChannel = null;
        }
        helloTaken.set(false);
    }

    private void pageFrame(int channel, ByteBuf frame) throws ProtocolException, MalformedPayloadException {
        if (!frame.isReadable()) {
            throw new ProtocolException("malformed frame: length 0 has no type");
        }
        int type = frame.readUnsignedByte();
        if (type != Wire.PAGES) {
            session.frameBytes(frame.readableBytes() + 5L);
        }
        switch (type) {
            case Wire.PAGES -> session.pages(channel, Frames.segmentOf(frame), frame.readerIndex(), frame.writerIndex());
            case Wire.ROUND_END -> session.channelRoundEnd(channel, Wire.readRoundEnd(frame));
            case Wire.ERROR -> throw new ProtocolException("source failed: " + Wire.readError(frame));
            default -> throw new ProtocolException("unexpected " + Wire.typeName(type) + " frame on page channel " + channel);
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        Integer role = ctx.channel().attr(ROLE).get();
        if (role == null && cause instanceof io.netty.handler.codec.DecoderException) {
            // a first frame too long for a handshake: refused with the reason, as any bad first frame
            pending.settle(ctx.channel());
            refuse(ctx.channel(), Frames.describe(cause));
            return;
        }
        if (role != null && role != REFUSED) {
            lost(ctx.channel(), role, Frames.describe(cause));
        }
        ctx.close();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        pending.settle(ctx.channel());
        Integer role = ctx.channel().attr(ROLE).get();
        if (role == null && session.awaitingHello() && controlChannel == null && connections.isEmpty()) {
            // a port scan or health check before the source: not the source, nothing lost
            return;
        }
        if (role != null && role != REFUSED) {
            lost(ctx.channel(), role, "connection closed");
        }
    }

    /**
     * A session connection is gone: the session decides, on the control thread, in order. A
     * control connection gone before its HELLO was taken never finished the handshake, and is
     * forgotten.
     */
    private void lost(Channel channel, int role, String reason) {
        if (role == CONTROL && session.awaitingHello()) {
            onControlThread(() -> {
                if (session.awaitingHello()) {
                    forget(channel);
                    session.refused("a connection closed after its HELLO, before the handshake ended (" + reason + ")");
                } else {
                    lost(reason);
                }
            });
            return;
        }
        lost(reason);
    }

    private void lost(String reason) {
        session.connectionGone();
        onControlThread(() -> session.connectionLost(reason));
    }

    /** Why a HELLO's migration id is not this destination's; null when it is, or when the HELLO is malformed (the session says why). */
    private String helloRefusal(ByteBuf frame) {
        try {
            return session.helloRefusal(Wire.readHello(frame.duplicate().skipBytes(1)));
        } catch (ProtocolException e) {
            return null;
        }
    }

    private void refuse(Channel channel, String reason) {
        refusals.accept(Frames.peer(channel) + ": " + reason);
        session.refused(reason);
        channel.attr(ROLE).set(REFUSED);
        ByteBuf error = channel.alloc().buffer(64);
        Wire.writeError(error, reason);
        channel.writeAndFlush(error).addListener(ChannelFutureListener.CLOSE);
    }

    // ---- SourcePeer ----

    @Override
    public void welcome(Wire.Welcome welcome) {
        ByteBuf out = controlChannel.alloc().buffer(Wire.FRAME_HEADER + 22);
        Wire.writeWelcome(out, welcome);
        controlChannel.writeAndFlush(out);
    }

    @Override
    public void postcopyRunning(long resumeNanos) {
        for (Channel c : connections) {
            // what the source pushes must not pile up in our receive queues in front of a requested page
            c.config().setOption(ChannelOption.SO_RCVBUF, Link.LOW_LATENCY_SOCKET_BUFFER);
        }
        ByteBuf out = controlChannel.alloc().buffer(Wire.FRAME_HEADER + 8);
        Wire.writePostcopyRunning(out, resumeNanos);
        controlChannel.writeAndFlush(out);
    }

    @Override
    public void resumed(long digest, long resumeNanos) {
        ByteBuf out = controlChannel.alloc().buffer(Wire.FRAME_HEADER + 16);
        Wire.writeResumed(out, digest, resumeNanos);
        Channel c = controlChannel;
        c.writeAndFlush(out).addListener(f -> closeConnections());
    }

    @Override
    public void stale(int round, dev.ferry.core.PageBitmap pages) {
        Channel c = controlChannel;
        dev.ferry.protocol.PageRuns.writeStale(round, dev.ferry.protocol.PageRuns.of(pages), c.alloc()::buffer, c::write);
        c.flush();
    }

    @Override
    public void missing(PostcopyDestination postcopy) {
        Channel c = controlChannel;
        postcopy.writeMissing(c.alloc()::buffer, c::write);
        ByteBuf recovered = c.alloc().buffer(Wire.FRAME_HEADER + 8);
        Wire.writeRecovered(recovered, postcopy.missing());
        c.writeAndFlush(recovered);
    }

    @Override
    public void requestPage(long page) {
        Channel out = requestChannel;
        if (out != null && out.isActive()) {
            ByteBuf request = out.alloc().buffer(Wire.FRAME_HEADER + 8);
            Wire.writePageRequest(request, page);
            out.writeAndFlush(request);
        }
    }

    @Override
    public void fail(String reason) {
        Channel c = controlChannel;
        if (c != null && c.isActive()) {
            ByteBuf error = c.alloc().buffer(64);
            Wire.writeError(error, reason);
            c.writeAndFlush(error).addListener(f -> closeConnections());
        } else {
            closeConnections();
        }
    }

    @Override
    public void closeAll() {
        controlChannel = null;
        requestChannel = null;
        closeConnections();
    }

    /**
     * Closes every connection of the session; marked refused first, so their closing is no loss,
     * and what still arrives is dropped. A socket closed with unread bytes in it is reset, and a
     * reset throws away what the source had not read yet, the answer included: so a TCP
     * connection is half-closed after the answer and closes when the source closes its end, or
     * after the peer timeout.
     */
    private void closeConnections() {
        for (Channel c : connections) {
            c.attr(ROLE).set(REFUSED);
            if (c instanceof DuplexChannel duplex && c.isActive()) {
                SslHandler tls = c.pipeline().get(SslHandler.class);
                if (tls != null) {
                    tls.closeOutbound().addListener(f -> duplex.shutdownOutput());
                } else {
                    duplex.shutdownOutput();
                }
                c.eventLoop().schedule(() -> c.close(), peerTimeoutMillis, TimeUnit.MILLISECONDS);
            } else {
                c.close();
            }
        }
        connections.clear();
    }
}
