package dev.ferry.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.CorruptedFrameException;
import io.netty.handler.codec.TooLongFrameException;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Coverage-guided fuzzing of the framing stage and every frame's reader: any bytes split into
 * frames by {@link Wire#frameDecoder()} or a destination's {@link Wire#handshakeFrameDecoder()} (in two writes, so that frames also cross a read), each
 * frame read by its type's reader. Invariants: the framing stage either frames or refuses a length
 * at once (above {@link Wire#MAX_FRAME}, or {@link Wire#MAX_HANDSHAKE_FRAME} for a destination's first frame), never anything else; a reader either throws
 * {@link ProtocolException} or returns what, written again by the writer, is the frame byte for
 * byte; PAGES records, DISCARD/MISSING runs and PAGE_REQUEST pages lie in the guest; and one input
 * allocates a bounded amount of heap.
 *
 * <p>Regression inputs (real control and page connections recorded by the engine's
 * {@code SeedStreams}, plus every input that ever failed) are in
 * {@code src/test/resources/dev/ferry/protocol/WireFuzzTestInputs/frames/}.
 */
class WireFuzzTest {
    /** The guest the records are checked against: not a round number, so bounds are off by one where they break. */
    private static final long PAGE_COUNT = 3 * 512 + 7;
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    @FuzzTest(maxDuration = "10m")
    void frames(byte[] input) {
        // the first run loads (and instruments) classes; the second, on the same bytes, is what one input costs
        frame(input);
        long allocatedBefore = THREADS.getCurrentThreadAllocatedBytes();
        frame(input);
        long allocated = THREADS.getCurrentThreadAllocatedBytes() - allocatedBefore;
        assertTrue(allocated < 1_048_576 + 16L * input.length, allocated + " bytes of heap for " + input.length + " bytes of input");
    }

    private static void frame(byte[] input) {
        // odd first byte: a destination's framing, whose first frame is held to MAX_HANDSHAKE_FRAME
        boolean handshake = input.length > 0 && (input[0] & 1) != 0;
        EmbeddedChannel channel = new EmbeddedChannel(handshake ? Wire.handshakeFrameDecoder() : Wire.frameDecoder());
        try {
            int split = input.length == 0 ? 0 : Byte.toUnsignedInt(input[0]) * input.length / 256;
            long consumed = 0;
            boolean refused = false;
            for (int[] part : new int[][] {{0, split}, {split, input.length - split}}) {
                RuntimeException refusal = null;
                try {
                    channel.writeInbound(Unpooled.wrappedBuffer(input, part[0], part[1]));
                } catch (TooLongFrameException | CorruptedFrameException e) {
                    refusal = e;
                }
                ByteBuf frame;
                while ((frame = channel.readInbound()) != null) {
                    try {
                        assertEquals(lengthField(input, consumed), frame.readableBytes(), "a frame is its length field's bytes");
                        consumed += 4 + frame.readableBytes();
                        read(frame);
                    } finally {
                        frame.release();
                    }
                }
                if (refusal != null) {
                    refused = true;
                    long length = lengthField(input, consumed);
                    long limit = handshake && consumed == 0 ? Wire.MAX_HANDSHAKE_FRAME : Wire.MAX_FRAME;
                    assertTrue(length > limit, "length " + length + " refused: " + refusal);
                    break;
                }
            }
            if (!refused) {
                assertTrue(input.length - consumed < 4 || lengthField(input, consumed) > input.length - consumed - 4,
                        "only an incomplete frame may be left unframed");
            }
        } finally {
            channel.finishAndReleaseAll();
        }
    }

    private static long lengthField(byte[] input, long at) {
        return Integer.toUnsignedLong(ByteBuffer.wrap(input, (int) at, 4).getInt());
    }

    /** Reads one frame ({@code type + body}) with its reader and checks what comes back. */
    private static void read(ByteBuf frame) {
        byte[] original = ByteBufUtil.getBytes(frame);
        if (!frame.isReadable()) {
            return; // a length of 0: the handlers refuse it before any reader runs
        }
        int type = frame.readUnsignedByte();
        assertTrue(!Wire.typeName(type).isEmpty());
        try {
            switch (type) {
                case Wire.HELLO -> {
                    Wire.Hello hello = Wire.readHello(frame);
                    rewritten(original, out -> Wire.writeHello(out, hello));
                }
                case Wire.WELCOME -> {
                    Wire.Welcome welcome = Wire.readWelcome(frame);
                    rewritten(original, out -> Wire.writeWelcome(out, welcome));
                }
                case Wire.JOIN -> {
                    Wire.Join join = Wire.readJoin(frame);
                    rewritten(original, out -> Wire.writeJoin(out, join));
                }
                case Wire.RECOVER -> {
                    Wire.Recover recover = Wire.readRecover(frame);
                    rewritten(original, out -> Wire.writeRecover(out, recover));
                }
                case Wire.JOINED -> {
                    int joined = Wire.readJoined(frame);
                    rewritten(original, out -> Wire.writeJoined(out, joined));
                }
                case Wire.ROUND_END -> {
                    Wire.RoundEnd end = Wire.readRoundEnd(frame);
                    rewritten(original, out -> Wire.writeRoundEnd(out, end.round(), end.pages()));
                }
                case Wire.DEVICE_STATE -> {
                    byte[] state = Wire.readDeviceState(frame);
                    rewritten(original, out -> Wire.writeDeviceState(out, state));
                }
                case Wire.END -> {
                    Wire.End end = Wire.readEnd(frame);
                    rewritten(original, out -> Wire.writeEnd(out, end.digest(), end.pauseNanos()));
                }
                case Wire.RESUMED -> {
                    Wire.Resumed resumed = Wire.readResumed(frame);
                    rewritten(original, out -> Wire.writeResumed(out, resumed.digest(), resumed.resumeNanos()));
                }
                case Wire.POSTCOPY_START -> {
                    long pause = Wire.readPostcopyStart(frame);
                    rewritten(original, out -> Wire.writePostcopyStart(out, pause));
                }
                case Wire.POSTCOPY_RUNNING -> {
                    long resume = Wire.readPostcopyRunning(frame);
                    rewritten(original, out -> Wire.writePostcopyRunning(out, resume));
                }
                case Wire.RECOVERED -> {
                    long missing = Wire.readRecovered(frame);
                    rewritten(original, out -> Wire.writeRecovered(out, missing));
                }
                case Wire.HEARTBEAT -> {
                    Wire.readHeartbeat(frame);
                    rewritten(original, Wire::writeHeartbeat);
                }
                case Wire.PAGES -> pages(original);
                case Wire.DISCARD, Wire.MISSING -> runs(type, frame, original);
                case Wire.PAGE_REQUEST -> {
                    List<Long> pages = new ArrayList<>();
                    Wire.readPageRequest(frame, PAGE_COUNT, pages::add);
                    rewritten(original, out -> {
                        Wire.writeHeader(out, Wire.PAGE_REQUEST, 8 * pages.size());
                        pages.forEach(out::writeLong);
                    });
                    pages.forEach(p -> assertTrue(p >= 0 && p < PAGE_COUNT, "requested page " + p));
                }
                case Wire.ERROR -> error(frame, original);
                default -> {
                    // an unknown type: the handlers refuse it by name
                }
            }
        } catch (ProtocolException refused) {
            assertTrue(refused.getMessage() != null && !refused.getMessage().isEmpty(), "a refusal says why");
        }
    }

    /** The records of a PAGES body, checked against the guest and copied record by record: the same bytes. */
    private static void pages(byte[] original) throws ProtocolException {
        MemorySegment frame = MemorySegment.ofArray(original);
        MemorySegment copy = MemorySegment.ofArray(new byte[original.length]);
        copy.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 0, (byte) Wire.PAGES);
        PageRecords records = new PageRecords().reset(frame, 1, original.length, PAGE_COUNT);
        long at = 1;
        while (records.next()) {
            long index = records.index();
            assertTrue(index >= 0 && index < PAGE_COUNT, "page " + index);
            assertTrue(records.encoding() >= 0 && records.encoding() < PageEncoding.COUNT, "encoding " + records.encoding());
            PageRecords.putHeader(copy, at, index, records.encoding(), records.length());
            at += Wire.RECORD_HEADER;
            if (records.encoding() == PageEncoding.ZERO) {
                assertTrue(records.length() >= 1 && index + records.length() <= PAGE_COUNT, "zero run " + records.length());
            } else {
                assertEquals(at, records.payloadOffset(), "the payload follows its header");
                MemorySegment.copy(frame, at, copy, at, records.length());
                at += records.length();
            }
        }
        assertEquals(original.length, at, "the records cover the body");
        assertArrayEquals(original, copy.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
    }

    private static void runs(int type, ByteBuf frame, byte[] original) throws ProtocolException {
        List<long[]> runs = new ArrayList<>();
        PageRuns.read(Wire.typeName(type), frame, PAGE_COUNT, (first, count) -> runs.add(new long[] {first, count}));
        for (long[] run : runs) {
            assertTrue(run[0] >= 0 && run[1] >= 1 && run[0] + run[1] <= PAGE_COUNT, "run " + run[0] + "+" + run[1]);
        }
        rewritten(original, out -> {
            Wire.writeHeader(out, type, PageRuns.RUN * runs.size());
            runs.forEach(run -> out.writeLong(run[0]).writeInt((int) run[1]));
        });
    }

    /** An ERROR's reason: valid UTF-8 of at most MAX_ERROR bytes comes back as it was sent. */
    private static void error(ByteBuf frame, byte[] original) {
        String reason = Wire.readError(frame);
        ByteBuf out = Unpooled.buffer();
        Wire.writeError(out, reason);
        assertTrue(out.readableBytes() <= Wire.FRAME_HEADER + Wire.MAX_ERROR, "an ERROR of " + out.readableBytes() + " bytes");
        boolean utf8;
        try {
            StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(original, 1, original.length - 1));
            utf8 = true;
        } catch (CharacterCodingException e) {
            utf8 = false;
        }
        if (utf8 && original.length - 1 <= Wire.MAX_ERROR) {
            out.skipBytes(4);
            assertArrayEquals(original, ByteBufUtil.getBytes(out), "ERROR reason");
        }
        out.release();
    }

    /** The frame the writer makes of what was read equals the frame read (after the length field). */
    private static void rewritten(byte[] original, java.util.function.Consumer<ByteBuf> writer) {
        ByteBuf out = Unpooled.buffer();
        writer.accept(out);
        assertEquals(original.length, out.readInt(), "length field");
        assertArrayEquals(original, ByteBufUtil.getBytes(out));
        out.release();
    }
}
