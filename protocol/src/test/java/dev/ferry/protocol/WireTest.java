package dev.ferry.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.TooLongFrameException;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Every frame through the real framing stage and back, and what a reader must refuse. */
class WireTest {
    private final EmbeddedChannel channel = new EmbeddedChannel(Wire.frameDecoder());

    @AfterEach
    void finish() {
        channel.finishAndReleaseAll();
    }

    @Test
    void helloRoundTrips() throws ProtocolException {
        // every field but the version at its maximum: a u8 or u16 may not come back negative
        for (Wire.Hello hello : new Wire.Hello[] {new Wire.Hello(Wire.VERSION, 4096, 6L << 30, 0x2F, 2, Wire.MAX_CHANNELS,
                MIGRATION), new Wire.Hello(Wire.VERSION, -1, -1L, -1, 0xFF, 0xFFFF, new java.util.UUID(-1, -1)),
                new Wire.Hello(Wire.VERSION, 4096, 1L << 30, 1, 0, 1, Wire.NO_MIGRATION)}) {
            ByteBuf frame = roundTrip(out -> Wire.writeHello(out, hello), Wire.HELLO, 45);
            assertEquals(hello, Wire.readHello(frame));
            frame.release();
        }
    }

    @Test
    void welcomeRoundTripsWithAnyU64Session() throws ProtocolException {
        for (long session : new long[] {0, 1, -1, Long.MIN_VALUE, 0x9E1F_4C2A_B7D0_3865L}) {
            Wire.Welcome welcome = new Wire.Welcome(0x25, session);
            ByteBuf frame = roundTrip(out -> Wire.writeWelcome(out, welcome), Wire.WELCOME, 22);
            assertEquals(welcome, Wire.readWelcome(frame));
            frame.release();
        }
    }

    @Test
    void joinRoundTripsForEveryChannelAndTheRequestChannel() throws ProtocolException {
        long session = 0x9E1F_4C2A_B7D0_3865L;
        for (int channel : new int[] {0, 1, Wire.MAX_CHANNELS - 1, Wire.MAX_CHANNELS, 0xFFFF}) {
            Wire.Join join = new Wire.Join(session, channel, MIGRATION);
            ByteBuf frame = roundTrip(out -> Wire.writeJoin(out, join), Wire.JOIN, 34);
            assertEquals(Wire.MAGIC, frame.getLong(frame.readerIndex()), "JOIN opens with the magic");
            assertEquals(join, Wire.readJoin(frame));
            frame.release();
        }
    }

    @Test
    void joinedRoundTrips() throws ProtocolException {
        for (int channel : new int[] {0, 7, Wire.MAX_CHANNELS, 0xFFFF}) {
            ByteBuf frame = roundTrip(out -> Wire.writeJoined(out, channel), Wire.JOINED, 2);
            assertEquals(channel, Wire.readJoined(frame));
            frame.release();
        }
    }

    @Test
    void recoverRoundTripsItsSession() throws ProtocolException {
        for (long session : new long[] {0, -1, 0x51C3_E07A_2F98_D6B4L}) {
            Wire.Recover recover = new Wire.Recover(session, MIGRATION);
            ByteBuf frame = roundTrip(out -> Wire.writeRecover(out, recover), Wire.RECOVER, 32);
            assertEquals(Wire.MAGIC, frame.getLong(frame.readerIndex()), "RECOVER opens with the magic");
            assertEquals(recover, Wire.readRecover(frame));
            frame.release();
        }
    }

    @Test
    void postcopyFramesRoundTrip() throws ProtocolException {
        ByteBuf start = roundTrip(out -> Wire.writePostcopyStart(out, 1_000_000_000L), Wire.POSTCOPY_START, 8);
        assertEquals(1_000_000_000L, Wire.readPostcopyStart(start));
        start.release();
        ByteBuf running = roundTrip(out -> Wire.writePostcopyRunning(out, -2L), Wire.POSTCOPY_RUNNING, 8);
        assertEquals(-2L, Wire.readPostcopyRunning(running));
        running.release();
        ByteBuf recovered = roundTrip(out -> Wire.writeRecovered(out, 3), Wire.RECOVERED, 8);
        assertEquals(3, Wire.readRecovered(recovered));
        recovered.release();
        ByteBuf request = roundTrip(out -> Wire.writePageRequest(out, 17), Wire.PAGE_REQUEST, 8);
        java.util.List<Long> pages = new java.util.ArrayList<>();
        Wire.readPageRequest(request, 18, pages::add);
        assertEquals(java.util.List.of(17L), pages);
        request.release();
    }

    @Test
    void joinWithBadMagicOrLengthIsRefused() {
        ByteBuf badMagic = Unpooled.buffer().writeLong(0x5145_4D55_0000_0000L).writeLong(42).writeShort(0).writeZero(16);
        ProtocolException magic = assertThrows(ProtocolException.class, () -> Wire.readJoin(badMagic));
        assertTrue(magic.getMessage().contains("bad magic 0x51454d5500000000 in JOIN"), magic.getMessage());
        // a version 1 RECOVER (magic only) or a HELLO sent where a JOIN belongs is no JOIN
        for (int length : new int[] {0, 8, 16, 17, 18, 19, 29, 33, 35, 45}) {
            ByteBuf body = Unpooled.buffer().writeLong(Wire.MAGIC).writeZero(Math.max(0, length - 8));
            body.writerIndex(length);
            ProtocolException e = assertThrows(ProtocolException.class, () -> Wire.readJoin(body));
            assertEquals("JOIN body of " + length + " bytes, expected 34", e.getMessage());
        }
        ByteBuf joined = Unpooled.buffer().writeByte(1);
        assertEquals("JOINED body of 1 bytes, expected 2",
                assertThrows(ProtocolException.class, () -> Wire.readJoined(joined)).getMessage());
    }

    @Test
    void recoverWithBadMagicOrTheVersion1LayoutIsRefused() {
        ByteBuf badMagic = Unpooled.buffer().writeLong(Wire.MAGIC ^ 1).writeLong(42).writeZero(16);
        ProtocolException magic = assertThrows(ProtocolException.class, () -> Wire.readRecover(badMagic));
        assertTrue(magic.getMessage().contains("bad magic") && magic.getMessage().contains("RECOVER"), magic.getMessage());
        ByteBuf version1 = Unpooled.buffer().writeLong(Wire.MAGIC);
        assertEquals("RECOVER body of 8 bytes, expected 32",
                assertThrows(ProtocolException.class, () -> Wire.readRecover(version1)).getMessage());
        ByteBuf version2 = Unpooled.buffer().writeLong(Wire.MAGIC).writeLong(42);
        assertEquals("RECOVER body of 16 bytes, expected 32",
                assertThrows(ProtocolException.class, () -> Wire.readRecover(version2)).getMessage());
    }

    @Test
    void errorRoundTrips() {
        String reason = "page index 99 out of range — «guest» has 16 pages";
        int length = reason.getBytes(StandardCharsets.UTF_8).length;
        ByteBuf frame = roundTrip(out -> Wire.writeError(out, reason), Wire.ERROR, length);
        assertEquals(reason, Wire.readError(frame));
        frame.release();
    }

    @Test
    void roundEndRoundTrips() throws ProtocolException {
        ByteBuf frame = roundTrip(out -> Wire.writeRoundEnd(out, 0x8000_0001, 1L << 40), Wire.ROUND_END, 12);
        assertEquals(new Wire.RoundEnd(0x8000_0001, 1L << 40), Wire.readRoundEnd(frame));
        frame.release();
    }

    @Test
    void deviceStateRoundTrips() {
        byte[] state = new byte[70_000];
        for (int i = 0; i < state.length; i++) {
            state[i] = (byte) (i * 31);
        }
        ByteBuf frame = roundTrip(out -> Wire.writeDeviceState(out, state), Wire.DEVICE_STATE, state.length);
        assertArrayEquals(state, ByteBufUtil.getBytes(frame));
        frame.release();
    }

    @Test
    void endAndResumedRoundTrip() throws ProtocolException {
        ByteBuf end = roundTrip(out -> Wire.writeEnd(out, 0xFEDC_BA98_7654_3210L, 123_456_789L), Wire.END, 16);
        assertEquals(new Wire.End(0xFEDC_BA98_7654_3210L, 123_456_789L), Wire.readEnd(end));
        end.release();
        ByteBuf resumed = roundTrip(out -> Wire.writeResumed(out, -1L, Long.MAX_VALUE), Wire.RESUMED, 16);
        assertEquals(new Wire.Resumed(-1L, Long.MAX_VALUE), Wire.readResumed(resumed));
        resumed.release();
    }

    @Test
    void pagesFrameWithPatchedLengthSplitsAtItsEnd() {
        ByteBuf out = Unpooled.buffer();
        Wire.writeHeader(out, Wire.PAGES, 0);
        out.writeLong(16).writeByte(1).writeShort(3);
        out.writeLong(40).writeByte(0).writeShort(4096).writeZero(4096);
        Wire.patchLength(out, 0);
        Wire.writeRoundEnd(out, 1, 4);
        channel.writeInbound(out);
        ByteBuf pages = channel.readInbound();
        assertEquals(1 + 2 * Wire.RECORD_HEADER + 4096, pages.readableBytes());
        assertEquals(Wire.PAGES, pages.readUnsignedByte());
        assertEquals(16, pages.readLong());
        pages.release();
        ByteBuf roundEnd = channel.readInbound();
        assertEquals(Wire.ROUND_END, roundEnd.readUnsignedByte());
        roundEnd.release();
    }

    @Test
    void helloWithBadMagicOrLengthIsRefused() {
        // the magic is checked before the length: whatever a stranger sends, it is told it is not Ferry
        for (int length : new int[] {8, 27, 29, 40, 45}) {
            ByteBuf body = helloBody(0x5145_4D55_0000_0000L, length);
            ProtocolException magic = assertThrows(ProtocolException.class, () -> Wire.readHello(body));
            assertTrue(magic.getMessage().contains("bad magic 0x51454d5500000000"), magic.getMessage());
        }
        for (int length : new int[] {0, 7, 9, 27, 28, 29, 30, 44, 46}) {
            ProtocolException e = assertThrows(ProtocolException.class, () -> Wire.readHello(helloBody(Wire.MAGIC, length)));
            assertEquals("HELLO body of " + length + " bytes, expected 45", e.getMessage());
        }
    }

    @Test
    void aHelloOfAnotherVersionIsToldTheVersionNotTheLength() {
        // a version 1 HELLO: 27 bytes, no channels
        ByteBuf version1 = Unpooled.buffer().writeLong(Wire.MAGIC).writeShort(1).writeInt(4096).writeLong(1L << 30)
                .writeInt(1).writeByte(0);
        assertEquals("source speaks protocol version 1, this destination " + Wire.VERSION,
                assertThrows(ProtocolException.class, () -> Wire.readHello(version1)).getMessage());
        // a version 2 HELLO: 29 bytes, no migration id
        ByteBuf version2 = helloBody(Wire.MAGIC, 29).setShort(8, 2);
        assertEquals("source speaks protocol version 2, this destination " + Wire.VERSION,
                assertThrows(ProtocolException.class, () -> Wire.readHello(version2)).getMessage());
        // a version 3 HELLO: this layout, another content hash
        ByteBuf version3 = helloBody(Wire.MAGIC, 45).setShort(8, 3);
        assertEquals("source speaks protocol version 3, this destination " + Wire.VERSION,
                assertThrows(ProtocolException.class, () -> Wire.readHello(version3)).getMessage());
        ByteBuf later = helloBody(Wire.MAGIC, 40).setShort(8, Wire.VERSION + 1);
        assertEquals("source speaks protocol version " + (Wire.VERSION + 1) + ", this destination " + Wire.VERSION,
                assertThrows(ProtocolException.class, () -> Wire.readHello(later)).getMessage());
    }

    @Test
    void welcomeWithBadMagicVersionOrLengthIsRefused() {
        ByteBuf badMagic = Unpooled.buffer().writeLong(Wire.MAGIC + 1).writeShort(Wire.VERSION).writeInt(1).writeLong(7);
        assertTrue(assertThrows(ProtocolException.class, () -> Wire.readWelcome(badMagic)).getMessage().contains("bad magic"));
        ByteBuf badVersion = Unpooled.buffer().writeLong(Wire.MAGIC).writeShort(Wire.VERSION + 1).writeInt(1).writeLong(7);
        assertTrue(assertThrows(ProtocolException.class, () -> Wire.readWelcome(badVersion)).getMessage()
                .contains("version " + (Wire.VERSION + 1) + ", this source " + Wire.VERSION));
        ByteBuf version1 = Unpooled.buffer().writeLong(Wire.MAGIC).writeShort(1).writeInt(1);
        assertEquals("WELCOME body of 14 bytes, expected 22",
                assertThrows(ProtocolException.class, () -> Wire.readWelcome(version1)).getMessage());
    }

    @Test
    void aFrameOfMaxFrameBytesPassesAndOneMoreIsMalformed() {
        ByteBuf largest = Unpooled.buffer(Wire.MAX_FRAME + 4);
        Wire.writeHeader(largest, Wire.DEVICE_STATE, Wire.MAX_FRAME - 1);
        largest.writeZero(Wire.MAX_FRAME - 1);
        channel.writeInbound(largest);
        ByteBuf frame = channel.readInbound();
        assertEquals(Wire.MAX_FRAME, frame.readableBytes());
        frame.release();

        ByteBuf tooLong = Unpooled.buffer().writeInt(Wire.MAX_FRAME + 1).writeByte(Wire.PAGES);
        DecoderException e = assertThrows(DecoderException.class, () -> channel.writeInbound(tooLong));
        assertTrue(e instanceof TooLongFrameException, e.toString());
    }

    @Test
    void aZeroLengthFrameReachesTheHandlerEmpty() {
        channel.writeInbound(Unpooled.buffer().writeInt(0));
        ByteBuf frame = channel.readInbound();
        assertFalse(frame.isReadable(), "the handler, not the framer, must refuse a frame without a type");
        frame.release();
        assertNull(channel.readInbound());
    }

    @Test
    void discardRunsThatOverflowOrLeaveTheGuestAreRefused() {
        long[][] bad = {{(1L << 63) - 5, 10}, {-1, 1}, {0, 0}, {16, 1}, {15, 2}};
        for (long[] run : bad) {
            ByteBuf body = Unpooled.buffer().writeLong(run[0]).writeInt((int) run[1]);
            ProtocolException e = assertThrows(ProtocolException.class,
                    () -> PageRuns.read("DISCARD", body, 16, (first, count) -> { }), run[0] + "+" + run[1]);
            assertTrue(e.getMessage().contains("does not fit 16 pages"), e.getMessage());
        }
        ByteBuf cut = Unpooled.buffer().writeLong(0).writeShort(1);
        assertTrue(assertThrows(ProtocolException.class, () -> PageRuns.read("MISSING", cut, 16, (f, c) -> { }))
                .getMessage().contains("not a whole number of runs"));
    }

    @Test
    void runsRoundTripAcrossFrames() throws ProtocolException {
        // every other page of 100,000: more runs than one frame holds
        long pages = 100_000;
        PageRuns.Pages odd = new PageRuns.Pages() {
            @Override
            public long nextIn(long from) {
                long p = from | 1;
                return p < pages ? p : -1;
            }

            @Override
            public long nextOut(long from) {
                return (from & 1) == 1 ? from + 1 : from;
            }
        };
        java.util.List<ByteBuf> frames = new java.util.ArrayList<>();
        PageRuns.write(Wire.DISCARD, odd, Unpooled::buffer, frames::add);
        assertTrue(frames.size() > 1, "frames: " + frames.size());
        long[] seen = {0, -1};
        for (ByteBuf out : frames) {
            channel.writeInbound(out);
            ByteBuf frame = channel.readInbound();
            assertEquals(Wire.DISCARD, frame.readUnsignedByte());
            PageRuns.read("DISCARD", frame, pages, (first, count) -> {
                assertEquals(1, count);
                assertTrue(first > seen[1] && (first & 1) == 1);
                seen[1] = first;
                seen[0]++;
            });
            frame.release();
        }
        assertEquals(pages / 2, seen[0]);
    }

    @Test
    void typeNamesCoverEveryFrame() {
        assertEquals("HELLO", Wire.typeName(Wire.HELLO));
        assertEquals("JOIN", Wire.typeName(Wire.JOIN));
        assertEquals("JOINED", Wire.typeName(Wire.JOINED));
        assertEquals("RESUMED", Wire.typeName(Wire.RESUMED));
        assertEquals("unknown(0x55)", Wire.typeName(0x55));
        assertEquals("GUEST", Wire.typeName(Wire.GUEST));
        assertEquals("unknown(0x07)", Wire.typeName(0x07));
    }

    /**
     * The ERROR body is UTF-8 text capped at 4096 bytes; the cap must not cut a character in two,
     * or the peer receives bytes that are not UTF-8.
     */
    @Test
    void anOverlongErrorIsCutAtACharacterBoundary() {
        String reason = "€".repeat(2000); // 3 bytes each: byte 4096 falls inside a character
        ByteBuf frame = roundTrip(out -> Wire.writeError(out, reason), Wire.ERROR, 4095);
        String received = Wire.readError(frame);
        frame.release();
        assertTrue(reason.startsWith(received), "truncated reason is not a prefix of the original");
    }

    /** Encodes with {@code write}, splits with the real framer, checks type and body length; returns the body. */
    private ByteBuf roundTrip(Consumer<ByteBuf> write, int type, int bodyLength) {
        ByteBuf out = Unpooled.buffer();
        write.accept(out);
        assertEquals(Wire.FRAME_HEADER + bodyLength, out.readableBytes(), "encoded size");
        assertEquals(1 + bodyLength, out.getInt(0), "length field counts type and body");
        channel.writeInbound(out);
        ByteBuf frame = channel.readInbound();
        assertNull(channel.readInbound(), "exactly one frame");
        assertEquals(type, frame.readUnsignedByte());
        assertEquals(bodyLength, frame.readableBytes());
        return frame;
    }

    private static final java.util.UUID MIGRATION = java.util.UUID.fromString("6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5");

    private static ByteBuf helloBody(long magic, int length) {
        ByteBuf body = Unpooled.buffer().writeLong(magic).writeShort(Wire.VERSION).writeInt(4096).writeLong(1L << 30)
                .writeInt(1).writeByte(0).writeShort(4);
        body.writerIndex(Math.min(length, body.writerIndex()));
        return body.writeZero(length - body.writerIndex());
    }
}
