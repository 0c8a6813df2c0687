package dev.ferry.transport;

import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.ReferenceCountUtil;
import java.util.function.Consumer;

/**
 * The listening side's gate behind its {@link SslHandler}: once the handshake is done it checks
 * the peer's certificate names against the allow-list, and only then steps aside for the
 * framing. A failed handshake or a peer not allowed is told why (an ERROR frame, inside TLS, when
 * the handshake itself succeeded), closed, and reported to {@code refusals}; nothing it sent
 * reaches the handlers behind, so the connection is forgotten.
 */
final class PeerCheck extends ChannelInboundHandlerAdapter {
    private final Tls tls;
    private final Consumer<String> refusals;
    private boolean refused;

    PeerCheck(Tls tls, Consumer<String> refusals) {
        this.tls = tls;
        this.refusals = refusals;
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object event) {
        if (event instanceof SslHandshakeCompletionEvent done) {
            if (done.isSuccess()) {
                check(ctx);
            } else if (!refused) {
                refused = true;
                refusals.accept(Frames.peer(ctx.channel()) + ": TLS handshake failed: " + Frames.describe(done.cause()));
                ctx.close();
            }
            return;
        }
        ctx.fireUserEventTriggered(event);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        // decrypted bytes come only after a finished handshake, whose event this handler has seen
        if (refused || !check(ctx)) {
            ReferenceCountUtil.release(msg);
            return;
        }
        ctx.fireChannelRead(msg);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (!refused) {
            refused = true;
            refusals.accept(Frames.peer(ctx.channel()) + ": " + Frames.describe(cause));
        }
        ctx.close();
    }

    /** Whether the peer is allowed; if not, tells it and closes. Steps aside once it is. */
    private boolean check(ChannelHandlerContext ctx) {
        if (refused) {
            return false;
        }
        String refusal = tls.refusal(ctx.pipeline().get(SslHandler.class).engine().getSession());
        if (refusal == null) {
            ctx.pipeline().remove(this);
            return true;
        }
        refused = true;
        refusals.accept(Frames.peer(ctx.channel()) + ": TLS: " + refusal + " " + tls.allowed());
        ByteBuf error = ctx.alloc().buffer(128);
        Wire.writeError(error, "TLS: refused: " + refusal);
        ctx.writeAndFlush(error).addListener(ChannelFutureListener.CLOSE);
        return false;
    }
}
