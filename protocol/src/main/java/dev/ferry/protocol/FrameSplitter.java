package dev.ferry.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.TooLongFrameException;

/**
 * Ferry's framing, on both sides: cuts the frames ({@code u32 length}, then {@code type + body}) out of
 * each read without copying them, each passed on as a slice of the buffer it arrived in; only a
 * frame split across reads is assembled, in a buffer of its own size. Netty's
 * {@code LengthFieldBasedFrameDecoder} copies every read into its cumulation buffer whenever part
 * of a frame is left from the read before, which on a page channel is nearly every read: a pass
 * over every byte the destination receives, where this one copies about one frame a read.
 *
 * <p>A connection's first frame may be at most {@code firstFrameLimit} bytes (a handshake's on a
 * destination, {@link Wire#MAX_FRAME} on a source), every later one {@link Wire#MAX_FRAME}
 * ({@link Wire#MAX_GUEST_FRAME} on a connection a gang shares, whose first frame is GUEST); a
 * longer one fails the connection at its length field,
 * before its bytes are buffered, with a {@link TooLongFrameException}, and nothing after it is
 * read.
 */
final class FrameSplitter extends ChannelInboundHandlerAdapter {
    private final int firstFrameLimit;
    private boolean first = true;
    /** Whether the first frame was a GUEST frame: a gang's connection carries them up to {@link Wire#MAX_GUEST_FRAME}. */
    private boolean guests;
    private boolean failed;
    /** Bytes of a length field split across reads, and how many of its four have come. */
    private int lengthField;
    private int lengthBytes;
    /** A frame split across reads, being assembled; null between frames. */
    private ByteBuf partial;

    FrameSplitter(int firstFrameLimit) {
        this.firstFrameLimit = firstFrameLimit;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof ByteBuf in)) {
            ctx.fireChannelRead(msg);
            return;
        }
        try {
            while (in.isReadable() && !failed) {
                if (partial != null) {
                    partial.writeBytes(in, Math.min(partial.writableBytes(), in.readableBytes()));
                    if (!partial.isWritable()) {
                        ByteBuf frame = partial;
                        partial = null;
                        emit(ctx, frame);
                    }
                } else if (lengthBytes > 0 || in.readableBytes() < Integer.BYTES) {
                    while (lengthBytes < Integer.BYTES && in.isReadable()) {
                        lengthField = lengthField << 8 | in.readUnsignedByte();
                        lengthBytes++;
                    }
                    if (lengthBytes == Integer.BYTES) {
                        lengthBytes = 0;
                        start(ctx, in, lengthField);
                    }
                } else {
                    start(ctx, in, in.readInt());
                }
            }
        } finally {
            in.release();
        }
    }

    /** A frame of {@code length} bytes starts at {@code in}'s reader index. */
    private void start(ChannelHandlerContext ctx, ByteBuf in, int length) {
        long unsigned = Integer.toUnsignedLong(length);
        long limit = first ? firstFrameLimit : guests ? Wire.MAX_GUEST_FRAME : Wire.MAX_FRAME;
        if (unsigned > limit) {
            failed = true;
            ctx.fireExceptionCaught(new TooLongFrameException(limit < Wire.MAX_FRAME
                    ? "a connection's first frame of " + unsigned + " bytes, above MAX_HANDSHAKE_FRAME " + limit
                    : "frame of " + unsigned + " bytes, above " + (guests ? "MAX_GUEST_FRAME " : "MAX_FRAME ") + limit));
            return;
        }
        if (in.readableBytes() >= length) {
            ByteBuf frame = in.retainedSlice(in.readerIndex(), length);
            in.skipBytes(length);
            emit(ctx, frame);
        } else {
            partial = ctx.alloc().directBuffer(length, length);
            partial.writeBytes(in);
        }
    }

    private void emit(ChannelHandlerContext ctx, ByteBuf frame) {
        if (first) {
            guests = frame.isReadable() && frame.getUnsignedByte(frame.readerIndex()) == Wire.GUEST;
        }
        first = false;
        ctx.fireChannelRead(frame);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        drop();
        ctx.fireChannelInactive();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        drop();
    }

    private void drop() {
        if (partial != null) {
            partial.release();
            partial = null;
        }
    }
}
