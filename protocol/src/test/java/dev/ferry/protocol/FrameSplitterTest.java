package dev.ferry.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.TooLongFrameException;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The destination's framing on real bytes: a stream of frames of many sizes, cut into reads at
 * every boundary there is (inside a length field, inside a body, exactly between frames), comes
 * out as the same frames in order; a frame whole inside one read comes out as a slice of it, not a
 * copy; a first frame above the handshake's limit, or a later one above MAX_FRAME, fails the
 * connection at its length field.
 */
class FrameSplitterTest {
    private static byte[] frame(byte[] body) {
        byte[] out = new byte[4 + body.length];
        out[0] = (byte) (body.length >>> 24);
        out[1] = (byte) (body.length >>> 16);
        out[2] = (byte) (body.length >>> 8);
        out[3] = (byte) body.length;
        System.arraycopy(body, 0, out, 4, body.length);
        return out;
    }

    private static List<byte[]> bodies() {
        SplittableRandom random = new SplittableRandom(5);
        List<byte[]> bodies = new ArrayList<>();
        // a handshake-sized first frame, then an empty one, one-byte ones and larger ones
        for (int size : new int[] {40, 0, 1, 3, 4, 5, 700, 9000, 1, 131_072, 2}) {
            byte[] body = new byte[size];
            random.nextBytes(body);
            bodies.add(body);
        }
        return bodies;
    }

    private static byte[] stream(List<byte[]> bodies) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] body : bodies) {
            out.writeBytes(frame(body));
        }
        return out.toByteArray();
    }

    /** Feeds {@code stream} to a splitter in reads of the given sizes (the last takes the rest); returns the frames. */
    private static List<byte[]> split(byte[] stream, int... reads) {
        EmbeddedChannel channel = new EmbeddedChannel(new FrameSplitter(Wire.MAX_HANDSHAKE_FRAME));
        int at = 0;
        for (int i = 0; i <= reads.length && at < stream.length; i++) {
            int n = i < reads.length ? Math.min(reads[i], stream.length - at) : stream.length - at;
            ByteBuf read = PooledByteBufAllocator.DEFAULT.directBuffer(n);
            read.writeBytes(stream, at, n);
            channel.writeInbound(read);
            at += n;
        }
        List<byte[]> frames = new ArrayList<>();
        for (ByteBuf f; (f = channel.readInbound()) != null; ) {
            frames.add(ByteBufUtil.getBytes(f));
            f.release();
        }
        channel.finishAndReleaseAll();
        return frames;
    }

    private static void assertFrames(List<byte[]> expected, List<byte[]> actual, String how) {
        assertEquals(expected.size(), actual.size(), how);
        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(i), actual.get(i), how + ", frame " + i);
        }
    }

    @Test
    void framesCutAtEveryBoundaryComeOutWholeAndInOrder() {
        List<byte[]> bodies = bodies();
        byte[] stream = stream(bodies);
        assertFrames(bodies, split(stream), "one read");
        // one cut anywhere in the first 200 bytes (inside length fields and small bodies), the rest in one read
        for (int cut = 1; cut < 200; cut++) {
            assertFrames(bodies, split(stream, cut), "cut at " + cut);
        }
        // reads of a fixed size, including one byte at a time across the first frames
        for (int size : new int[] {1, 2, 3, 7, 4096, 65_536}) {
            int[] reads = new int[stream.length / size + 1];
            java.util.Arrays.fill(reads, size);
            assertFrames(bodies, split(stream, reads), "reads of " + size);
        }
    }

    @Test
    void aFrameWholeInOneReadIsASliceOfItNotACopy() {
        EmbeddedChannel channel = new EmbeddedChannel(new FrameSplitter(Wire.MAX_HANDSHAKE_FRAME));
        byte[] a = frame(new byte[] {1, 2, 3});
        byte[] b = frame(new byte[] {4, 5});
        ByteBuf read = PooledByteBufAllocator.DEFAULT.directBuffer(a.length + b.length);
        read.writeBytes(a).writeBytes(b);
        long base = read.memoryAddress();
        channel.writeInbound(read);
        ByteBuf first = channel.readInbound();
        ByteBuf second = channel.readInbound();
        assertEquals(base + 4, first.memoryAddress(), "the first frame's body where it arrived");
        assertEquals(base + a.length + 4, second.memoryAddress());
        first.release();
        second.release();
        assertEquals(0, read.refCnt(), "the read is freed once its frames are");
        channel.finishAndReleaseAll();
    }

    @Test
    void aFirstFrameAboveTheHandshakeLimitFailsAtItsLengthField() {
        EmbeddedChannel channel = new EmbeddedChannel(new FrameSplitter(Wire.MAX_HANDSHAKE_FRAME));
        ByteBuf read = PooledByteBufAllocator.DEFAULT.directBuffer(8);
        read.writeInt(Wire.MAX_HANDSHAKE_FRAME + 1).writeInt(0);
        TooLongFrameException e = assertThrows(TooLongFrameException.class, () -> channel.writeInbound(read));
        assertTrue(e.getMessage().contains("first frame of 4097 bytes, above MAX_HANDSHAKE_FRAME 4096"), e.getMessage());
        assertNull(channel.readInbound(), "nothing passed on");
        channel.finishAndReleaseAll();
    }

    @Test
    void aLaterFrameAboveMaxFrameFailsAndNothingAfterItIsRead() {
        EmbeddedChannel channel = new EmbeddedChannel(new FrameSplitter(Wire.MAX_HANDSHAKE_FRAME));
        ByteBuf read = PooledByteBufAllocator.DEFAULT.directBuffer(64);
        read.writeBytes(frame(new byte[] {9})).writeInt(Wire.MAX_FRAME + 1).writeBytes(frame(new byte[] {7}));
        TooLongFrameException e = assertThrows(TooLongFrameException.class, () -> channel.writeInbound(read));
        assertTrue(e.getMessage().contains("above MAX_FRAME"), e.getMessage());
        ByteBuf only = channel.readInbound();
        assertArrayEquals(new byte[] {9}, ByteBufUtil.getBytes(only));
        only.release();
        assertNull(channel.readInbound(), "the frame after the bad length is never read");
        channel.finishAndReleaseAll();
    }
}
