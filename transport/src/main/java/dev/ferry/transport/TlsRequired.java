package dev.ferry.transport;

import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.util.List;
import java.util.function.Consumer;

/**
 * In front of a listening side's TLS: a connection whose first byte does not open a TLS handshake
 * record (a plaintext Ferry source's first byte is its HELLO's length) is told in plaintext, with
 * an ERROR frame, that this destination needs TLS, and closed. Otherwise it steps aside and
 * everything goes to the TLS handler unchanged.
 */
final class TlsRequired extends ByteToMessageDecoder {
    /** The content type of a TLS handshake record (RFC 8446, 5.1). */
    private static final int HANDSHAKE = 22;

    private final Consumer<String> refusals;

    TlsRequired(Consumer<String> refusals) {
        this.refusals = refusals;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (!in.isReadable()) {
            return;
        }
        if (in.getUnsignedByte(in.readerIndex()) == HANDSHAKE) {
            ctx.pipeline().remove(this);
            return;
        }
        in.skipBytes(in.readableBytes());
        refusals.accept(Frames.peer(ctx.channel()) + ": not TLS (a plaintext source?)");
        ByteBuf error = ctx.alloc().buffer(96);
        Wire.writeError(error, "this destination accepts only mutual TLS connections: give tls-cert, tls-key and tls-ca");
        ctx.writeAndFlush(error).addListener(ChannelFutureListener.CLOSE);
    }
}
