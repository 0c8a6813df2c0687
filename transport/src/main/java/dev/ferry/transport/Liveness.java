package dev.ferry.transport;

import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.handler.timeout.ReadTimeoutHandler;
import java.util.concurrent.TimeUnit;

/**
 * Liveness by heartbeats, on every connection of a session and both ways: each side sends
 * HEARTBEAT whenever it wrote nothing for a quarter of the peer timeout, so a peer that hears no
 * byte for the whole peer timeout is dead or stuck, however long it rightly has nothing to say
 * (a control connection during a round, a request connection while the guest touches no missing
 * page, a page channel whose share is sent).
 */
public final class Liveness {
    private Liveness() {
    }

    /** How often a quiet side says it is alive: four heartbeats fit in one peer timeout. */
    public static long heartbeatMillis(long peerTimeoutMillis) {
        return Math.max(1, peerTimeoutMillis / 4);
    }

    /**
     * The read timeout, to go in front of the framing: it is reset by any bytes that arrive, so a
     * long frame arriving slowly never looks like silence.
     */
    public static ChannelHandler readTimeout(long peerTimeoutMillis) {
        return new ReadTimeoutHandler(peerTimeoutMillis, TimeUnit.MILLISECONDS);
    }

    /** Starts sending HEARTBEAT on {@code channel} whenever it wrote nothing for a heartbeat interval. */
    public static void heartbeat(Channel channel, long peerTimeoutMillis) {
        channel.pipeline().addLast(new IdleStateHandler(0, heartbeatMillis(peerTimeoutMillis), 0, TimeUnit.MILLISECONDS),
                new ChannelDuplexHandler() {
                    @Override
                    public void userEventTriggered(ChannelHandlerContext ctx, Object event) {
                        if (event instanceof IdleStateEvent) {
                            if (ctx.channel() instanceof DuplexChannel duplex && duplex.isOutputShutdown()) {
                                // the side closing after its last answer: nothing more to say, or to fail on
                                return;
                            }
                            ByteBuf beat = ctx.alloc().buffer(Wire.FRAME_HEADER);
                            Wire.writeHeartbeat(beat);
                            ctx.writeAndFlush(beat, ctx.voidPromise());
                        } else {
                            ctx.fireUserEventTriggered(event);
                        }
                    }
                });
    }
}
