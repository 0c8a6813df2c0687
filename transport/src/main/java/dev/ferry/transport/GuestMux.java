package dev.ferry.transport;

import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.IntFunction;

/**
 * The destination's end of a connection a gang's guests share: every frame on it is a GUEST
 * frame, and each guest's frames go to a {@link GuestChannel} of that guest's, whose pipeline is
 * what a connection of that guest alone would have (the handshake framing, then the guest's
 * handler), so a guest's migration runs over a shared connection exactly as over one of its own.
 * The shared connection is refused with a reason when a frame is not GUEST (or, once a guest
 * showed, the connection's own HEARTBEAT), or names a guest
 * this destination does not receive; when it fails or closes, so does each guest's connection
 * in it, with the reason. One not showing a guest within the handshake timeout is closed, and at
 * most {@code maxPending} may be that far at once.
 */
public final class GuestMux extends ChannelInboundHandlerAdapter {
    private final IntFunction<ChannelHandler> guests;
    private final Consumer<String> refusals;
    private final long peerTimeoutMillis;
    private final PendingConnections pending;
    /** Each guest's connection in this one; touched on its event loop only. */
    private final Map<Integer, GuestChannel> open = new HashMap<>();
    /**
     * Guests whose connection closed here first: what their source sent before it heard so is
     * dropped until its own end arrives, never taken for a new connection of theirs.
     */
    private final java.util.Set<Integer> closing = new java.util.HashSet<>();
    private boolean refused;

    /**
     * A connection's demultiplexer; {@code guests} gives the handler of a guest received here, or
     * null. Connections of one listening socket share {@code pending}.
     */
    public GuestMux(IntFunction<ChannelHandler> guests, Consumer<String> refusals, long peerTimeoutMillis,
            PendingConnections pending) {
        this.guests = guests;
        this.refusals = refusals;
        this.peerTimeoutMillis = peerTimeoutMillis;
        this.pending = pending;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        if (!pending.admit(ctx.channel(), () -> refuse(ctx, "no guest's frame within the handshake timeout of "
                + pending.timeoutMillis() + " ms"))) {
            refused = true;
            ctx.close();
            return;
        }
        ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf frame = (ByteBuf) msg;
        if (refused) {
            frame.release();
            return;
        }
        try {
            int type = frame.isReadable() ? frame.readUnsignedByte() : -1;
            if (type == Wire.HEARTBEAT && !pending.isPending(ctx.channel())) {
                // the shared connection's own: the source is alive, which the read timeout has noted
                Wire.readHeartbeat(frame);
                return;
            }
            if (type != Wire.GUEST) {
                throw new ProtocolException("this destination receives a gang, whose guests share their connections:"
                        + " expected GUEST frames, got " + (type < 0 ? "an empty frame" : Wire.typeName(type)));
            }
            int guest = Wire.readGuest(frame);
            if (!frame.isReadable()) {
                // the source closed this guest's connection: an answer to our end, or its own
                GuestChannel ended = open.remove(guest);
                if (ended != null) {
                    ended.close();
                } else {
                    closing.remove(guest);
                }
                return;
            }
            if (closing.contains(guest)) {
                return;
            }
            GuestChannel channel = open.get(guest);
            if (channel == null) {
                channel = open(ctx, guest);
            }
            channel.pipeline().fireChannelRead(frame.retain());
        } catch (ProtocolException e) {
            refuse(ctx, e.getMessage());
        } finally {
            frame.release();
        }
    }

    private GuestChannel open(ChannelHandlerContext ctx, int guest) throws ProtocolException {
        ChannelHandler handler = guests.apply(guest);
        if (handler == null) {
            throw new ProtocolException("guest " + guest + " is not received here");
        }
        if (pending.isPending(ctx.channel())) {
            pending.settle(ctx.channel());
            // a guest of ours: from now on this side says it is alive on the shared connection too
            Liveness.heartbeat(ctx.channel(), peerTimeoutMillis);
        }
        GuestChannel channel = new GuestChannel(ctx.channel(), guest);
        channel.pipeline().addLast(Wire.handshakeFrameDecoder(), handler);
        open.put(guest, channel);
        channel.closeFuture().addListener(f -> {
            if (open.remove(guest, channel)) {
                closing.add(guest);
            }
        });
        // on this event loop, so registered (and active) before the next line
        ctx.channel().eventLoop().register(channel);
        return channel;
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        for (GuestChannel channel : new ArrayList<>(open.values())) {
            channel.pipeline().fireExceptionCaught(cause);
        }
        if (pending.isPending(ctx.channel())) {
            refuse(ctx, Frames.describe(cause));
            return;
        }
        ctx.close();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        pending.settle(ctx.channel());
        for (GuestChannel channel : new ArrayList<>(open.values())) {
            channel.close();
        }
        ctx.fireChannelInactive();
    }

    private void refuse(ChannelHandlerContext ctx, String reason) {
        pending.settle(ctx.channel());
        refused = true;
        Channel channel = ctx.channel();
        refusals.accept(Frames.peer(channel) + ": " + reason);
        ByteBuf error = channel.alloc().buffer(64);
        Wire.writeError(error, reason);
        channel.writeAndFlush(error).addListener(ChannelFutureListener.CLOSE);
    }
}
