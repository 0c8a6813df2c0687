package dev.ferry.transport;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandler;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.TooLongFrameException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** The framing stage of every Ferry pipeline. */
public final class Frames {
    private Frames() {
    }

    /**
     * Splits the byte stream into frames of {@code type + body}, stripping the u32 length; a
     * length above {@link Wire#MAX_FRAME} fails the channel.
     */
    public static ChannelHandler decoder() {
        return new LengthFieldBasedFrameDecoder(Wire.MAX_FRAME + 4, 0, 4, 0, 4);
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

    /** A one-line description of a pipeline failure. */
    public static String describe(Throwable cause) {
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
