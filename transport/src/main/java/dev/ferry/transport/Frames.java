package dev.ferry.transport;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.TooLongFrameException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** Netty-side helpers of the pipelines: frame memory views and failure descriptions. */
public final class Frames {
    private Frames() {
    }

    /**
     * A segment over a direct buffer's whole capacity, offset 0 being buffer index 0, so page
     * stages read and write frame bytes in place.
     */
    public static MemorySegment segmentOf(ByteBuf buf) {
        if (buf.hasMemoryAddress()) {
            return MemorySegment.ofAddress(buf.memoryAddress()).reinterpret(buf.capacity());
        }
        return MemorySegment.ofBuffer(buf.nioBuffer(0, buf.capacity()));
    }

    /** The peer of a connection as {@code host:port}. */
    public static String peer(io.netty.channel.Channel channel) {
        return channel.remoteAddress() instanceof java.net.InetSocketAddress a ? a.getHostString() + ":" + a.getPort()
                : String.valueOf(channel.remoteAddress());
    }

    /** A one-line description of a pipeline failure. */
    public static String describe(Throwable cause) {
        if (cause instanceof io.netty.handler.codec.DecoderException && cause.getCause() instanceof javax.net.ssl.SSLException) {
            cause = cause.getCause();
        }
        if (cause instanceof javax.net.ssl.SSLException) {
            return "TLS: " + cause.getMessage();
        }
        if (cause instanceof TooLongFrameException) {
            return "malformed frame: " + cause.getMessage();
        }
        if (cause instanceof io.netty.handler.timeout.ReadTimeoutException) {
            return "peer silent past the peer timeout: it is dead or stuck";
        }
        if (cause instanceof IOException && cause.getMessage() != null) {
            return cause.getMessage();
        }
        return cause.toString();
    }
}
