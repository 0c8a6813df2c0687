package dev.ferry.bench.trace;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class TraceReaderTest {
    private static final int ENTRY = 8 + TraceWriter.PAGE;

    /** A valid trace: 16 pages, 3 image pages, 3 epochs of 2 pages. */
    static TraceWriter valid() {
        return TraceWriter.random(16, 3, 3, 2, 42);
    }

    static long imageStart(TraceWriter w) {
        return 32 + w.meta.length;
    }

    static long epochStart(TraceWriter w, int e) {
        long at = imageStart(w) + 12 + (long) w.imageIndices.size() * ENTRY;
        for (int i = 0; i < e; i++) {
            at += 16 + (long) w.epochs.get(i).indices.size() * ENTRY;
        }
        return at;
    }

    /** Reads every part of a trace, the way a replay does. */
    static void readAll(byte[] bytes) throws IOException {
        try (TraceReader reader = TraceReader.open(new ByteArrayInputStream(bytes))) {
            reader.readImage((index, page) -> { });
            while (reader.nextEpoch() != null) {
                // every epoch is validated as it is read
            }
            reader.finish();
        }
    }

    @Test
    void readsAValidTraceRawAndAsConcatenatedZstdFrames() throws IOException {
        TraceWriter w = valid();
        byte[] raw = w.bytes();
        for (byte[] bytes : List.of(raw, TraceWriter.zstd(raw), TraceWriter.zstd(raw, 40, 5000, raw.length - 12))) {
            try (TraceReader reader = TraceReader.open(new ByteArrayInputStream(bytes))) {
                assertEquals(16, reader.pageCount());
                assertEquals(16 * 4096, reader.memoryBytes());
                assertEquals(3, reader.epochCount());
                assertEquals("synthetic", reader.meta().name());
                assertEquals("test trace", reader.meta().description());
                assertEquals(bytes != raw, reader.compressed());
                List<Long> indices = new ArrayList<>();
                List<byte[]> pages = new ArrayList<>();
                assertEquals(3, reader.readImage((index, page) -> {
                    indices.add(index);
                    pages.add(page.toArray(ValueLayout.JAVA_BYTE));
                }));
                assertEquals(w.imageIndices, indices);
                for (int i = 0; i < pages.size(); i++) {
                    assertArrayEquals(w.imagePages.get(i), pages.get(i));
                }
                for (TraceWriter.Epoch expected : w.epochs) {
                    TraceEpoch epoch = reader.nextEpoch();
                    assertEquals(expected.timeMicros, epoch.timeMicros());
                    assertEquals(expected.indices.size(), epoch.count());
                    for (int i = 0; i < epoch.count(); i++) {
                        assertEquals(expected.indices.get(i), epoch.pageIndex(i));
                        assertArrayEquals(expected.pages.get(i), epoch.data()
                                .asSlice(TraceEpoch.dataOffset(i), 4096).toArray(ValueLayout.JAVA_BYTE));
                    }
                }
                assertNull(reader.nextEpoch());
                reader.finish();
            }
        }
    }

    @Test
    void acceptsEmptyMetaNoImageAndNoEpochs() throws IOException {
        TraceWriter w = new TraceWriter(1);
        w.meta = new byte[0];
        readAll(w.bytes());
        readAll(TraceWriter.zstd(w.bytes()));
    }

    @Test
    void finishSkipsUnreadEpochsAndStillChecksTheChecksum() throws IOException {
        TraceWriter w = valid();
        w.checksumXor = 1;
        try (TraceReader reader = TraceReader.open(new ByteArrayInputStream(w.bytes()))) {
            TraceFormatException e = assertThrows(TraceFormatException.class, reader::finish);
            assertTrue(e.getMessage().contains("checksum"), e.getMessage());
        }
    }

    record Case(String name, Consumer<TraceWriter> corrupt, java.util.function.ToLongFunction<TraceWriter> offset,
                String expected) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> malformed() {
        return Stream.of(
                new Case("1 magic", w -> w.magic = 0x32544D5952524546L, w -> 0, "magic \"FERRYMT1\""),
                new Case("2 version", w -> w.version = 2, w -> 8, "version 1"),
                new Case("3 page size", w -> w.pageSize = 8192, w -> 12, "page size 4096"),
                new Case("4 page count 0", w -> w.pageCount = 0, w -> 16, "page count in 1..2^28"),
                new Case("4 page count too large", w -> w.pageCount = (1L << 28) + 1, w -> 16, "page count in 1..2^28"),
                new Case("4 page count negative as signed", w -> w.pageCount = -1, w -> 16, "page count in 1..2^28"),
                new Case("5 epoch count", w -> w.declaredEpochs = (1L << 24) + 1, w -> 24, "epoch count"),
                new Case("6 meta length", w -> w.declaredMetaLength = 65537, w -> 28, "meta length"),
                new Case("6 meta not UTF-8", w -> w.meta = new byte[] {'{', '"', (byte) 0xC3, '"', ':', '1', '}'},
                        w -> 34, "UTF-8"),
                new Case("6 meta an array", w -> w.meta = ascii("[1,2]"), w -> 32, "JSON object"),
                new Case("6 meta bad value", w -> w.meta = ascii("{\"a\": }"), w -> 38, "a valid value"),
                new Case("6 meta trailing text", w -> w.meta = ascii("{\"a\":1} x"), w -> 40, "token 'x'"),
                new Case("6 meta unterminated", w -> w.meta = ascii("{\"a\":\"b"), w -> 39, "closing"),
                new Case("6 meta after multibyte", w -> w.meta = "{\"é\":tru}".getBytes(StandardCharsets.UTF_8),
                        w -> 32 + 6, "'true'"),
                new Case("7 image tag", w -> w.imageTag = "IMG1", TraceReaderTest::imageStart, "tag \"IMG0\""),
                new Case("7 epoch tag", w -> w.epochs.get(1).tag = "EPCX", w -> epochStart(w, 1), "tag \"EPC0\""),
                new Case("7 end tag", w -> w.endTag = "END1", w -> epochStart(w, 3), "tag \"END0\""),
                new Case("7 fewer epochs declared", w -> w.declaredEpochs = 2, w -> epochStart(w, 2), "tag \"END0\""),
                new Case("7 more epochs declared", w -> w.declaredEpochs = 4, w -> epochStart(w, 3), "tag \"EPC0\""),
                new Case("8 image count", w -> w.declaredImageCount = 17, w -> imageStart(w) + 4, "image page count"),
                new Case("8 epoch count", w -> w.epochs.get(0).declaredCount = 17, w -> epochStart(w, 0) + 12,
                        "epoch page count"),
                new Case("9 image index", w -> w.imageIndices.set(2, 16L), w -> imageStart(w) + 12 + 2L * ENTRY,
                        "page index below"),
                new Case("9 epoch index", w -> w.epochs.get(2).indices.set(1, -1L),
                        w -> epochStart(w, 2) + 16 + ENTRY, "page index below"),
                new Case("10 image indices equal", w -> w.imageIndices.set(1, w.imageIndices.get(0)),
                        w -> imageStart(w) + 12 + ENTRY, "strictly increasing"),
                new Case("10 epoch indices decrease", w -> {
                    List<Long> indices = w.epochs.get(1).indices;
                    indices.set(1, indices.get(0) - 1);
                }, w -> epochStart(w, 1) + 16 + ENTRY, "strictly increasing"),
                new Case("11 epoch time 0", w -> w.epochs.get(0).timeMicros = 0, w -> epochStart(w, 0) + 4,
                        "epoch time above 0"),
                new Case("11 epoch time repeated", w -> w.epochs.get(2).timeMicros = w.epochs.get(1).timeMicros,
                        w -> epochStart(w, 2) + 4, "strictly increasing"),
                new Case("11 epoch time decreasing", w -> w.epochs.get(1).timeMicros = 5,
                        w -> epochStart(w, 1) + 4, "strictly increasing"),
                new Case("13 checksum", w -> w.checksumXor = 1L << 40, w -> epochStart(w, 3) + 4, "checksum"),
                new Case("14 byte after trailer", w -> w.trailing = new byte[] {0},
                        w -> epochStart(w, 3) + 12, "end of stream after the trailer")
        ).flatMap(c -> Stream.of(Arguments.of(c, false), Arguments.of(c, true)));
    }

    @ParameterizedTest(name = "{0} zstd={1}")
    @MethodSource("malformed")
    void rejectsMalformedTracesNamingOffsetAndExpectation(Case c, boolean compressed) {
        TraceWriter w = valid();
        c.corrupt.accept(w);
        byte[] raw = w.bytes();
        byte[] bytes = compressed ? TraceWriter.zstd(raw, 32, raw.length / 2) : raw;
        TraceFormatException e = assertThrows(TraceFormatException.class, () -> readAll(bytes));
        long offset = c.offset.applyAsLong(w);
        assertEquals(offset, e.offset(), e.getMessage());
        assertTrue(e.getMessage().startsWith("trace offset " + offset + ": "), e.getMessage());
        assertTrue(e.getMessage().contains("expected"), e.getMessage());
        assertTrue(e.getMessage().contains(c.expected), e.getMessage());
    }

    @Test
    void rejectsTruncationAtEveryOffset() {
        byte[] raw = valid().bytes();
        for (int length = 0; length < raw.length; length += length < 200 || length > raw.length - 200 ? 1 : 97) {
            byte[] cut = Arrays.copyOf(raw, length);
            TraceFormatException e = assertThrows(TraceFormatException.class, () -> readAll(cut), "length " + length);
            assertTrue(e.getMessage().contains("stream ends before the trailer: expected"), e.getMessage());
            assertTrue(e.offset() <= length && e.offset() >= length - 4096, e.getMessage());
        }
    }

    @Test
    void rejectsTruncatedZstdAtManyOffsets() {
        byte[] raw = valid().bytes();
        byte[] compressed = TraceWriter.zstd(raw, 32, raw.length / 2);
        for (int length = 4; length < compressed.length; length += Math.max(1, compressed.length / 300)) {
            byte[] cut = Arrays.copyOf(compressed, length);
            TraceFormatException e = assertThrows(TraceFormatException.class, () -> readAll(cut), "length " + length);
            assertTrue(e.getMessage().contains("expected"), e.getMessage());
            assertTrue(e.getMessage().contains("stream ends before the trailer")
                    || e.getMessage().contains("zstd stream does not decompress"), e.getMessage());
        }
    }

    @Test
    void rule15RejectsZstdThatDoesNotDecompress() {
        SplittableRandom random = new SplittableRandom(3);
        byte[] garbage = new byte[1000];
        random.nextBytes(garbage);
        garbage[0] = 0x28;
        garbage[1] = (byte) 0xB5;
        garbage[2] = 0x2F;
        garbage[3] = (byte) 0xFD;
        TraceFormatException e = assertThrows(TraceFormatException.class, () -> readAll(garbage));
        assertTrue(e.getMessage().contains("zstd stream does not decompress"), e.getMessage());
        assertEquals(0, e.offset());

        // Compressed garbage after a valid compressed trace is a zstd error too, found at the trace's end.
        byte[] raw = valid().bytes();
        byte[] compressed = TraceWriter.zstd(raw);
        byte[] withJunk = Arrays.copyOf(compressed, compressed.length + 16);
        Arrays.fill(withJunk, compressed.length, withJunk.length, (byte) 0x5A);
        TraceFormatException junk = assertThrows(TraceFormatException.class, () -> readAll(withJunk));
        assertTrue(junk.getMessage().contains("zstd"), junk.getMessage());
        assertEquals(raw.length, junk.offset());
    }

    @Test
    void anotherZstdFrameWithBytesAfterTheTrailerIsRule14() {
        byte[] raw = valid().bytes();
        byte[] extra = TraceWriter.zstd(new byte[] {1, 2, 3});
        byte[] compressed = TraceWriter.zstd(raw);
        byte[] both = Arrays.copyOf(compressed, compressed.length + extra.length);
        System.arraycopy(extra, 0, both, compressed.length, extra.length);
        TraceFormatException e = assertThrows(TraceFormatException.class, () -> readAll(both));
        assertEquals(raw.length, e.offset());
        assertTrue(e.getMessage().contains("found byte 0x01"), e.getMessage());
    }

    /**
     * The 78-byte trace, by hand: a 2^28-page guest, one epoch that claims 2^28 pages and
     * then holds one page index and 10 bytes of its data. Allocating from the count would need
     * 1 TiB (and 2 GiB of indices); the reader must fail at the end of the bytes instead.
     */
    @Test
    void epochClaimingTwoTo28PagesInATinyFileFailsAtItsEndWithoutAllocating() throws IOException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(78).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.put(ascii("FERRYMT1")).putInt(1).putInt(4096).putLong(1L << 28).putInt(1).putInt(0); // header, no meta
        b.put(ascii("IMG0")).putLong(0); // empty image
        b.put(ascii("EPC0")).putLong(500_000).putInt(1 << 28); // the claim
        b.putLong(7).put(new byte[10]); // one index, 10 of its 4096 bytes
        byte[] tiny = b.array();
        assertEquals(78, b.position());
        for (byte[] bytes : List.of(tiny, TraceWriter.zstd(tiny))) {
            try (TraceReader reader = TraceReader.open(new ByteArrayInputStream(bytes))) {
                TraceFormatException e = assertThrows(TraceFormatException.class, reader::nextEpoch);
                assertEquals(78, e.offset());
                assertTrue(e.getMessage().startsWith("trace offset 78: stream ends before the trailer"),
                        e.getMessage());
                assertTrue(e.getMessage().contains("epoch page data"), e.getMessage());
                assertEquals(16, reader.epochBuffer().capacity(), "buffers sized by what arrived");
                assertEquals(16L * 4096, reader.epochBuffer().data().byteSize());
            }
        }
    }

    @Test
    void epochBuffersGrowByDoublingWithThePagesThatArrive() throws IOException {
        TraceWriter w = TraceWriter.random(1L << 28, 0, 1, 40, 5);
        w.epochs.get(0).declaredCount = 1L << 28;
        byte[] full = w.bytes();
        byte[] cut = Arrays.copyOf(full, full.length - 12); // the trailer gone: the 41st page index is missing
        try (TraceReader reader = TraceReader.open(new ByteArrayInputStream(cut))) {
            TraceFormatException e = assertThrows(TraceFormatException.class, reader::nextEpoch);
            assertEquals(cut.length, e.offset());
            assertTrue(e.getMessage().contains("stream ends before the trailer"), e.getMessage());
            assertTrue(e.getMessage().contains("a page index"), e.getMessage());
            assertEquals(64, reader.epochBuffer().capacity(), "16, 32, 64 for 40 pages");
        }
        // A valid epoch's pages survive the growth: 40 pages read into buffers grown twice.
        TraceWriter valid = TraceWriter.random(1024, 0, 1, 40, 5);
        try (TraceReader reader = TraceReader.open(new ByteArrayInputStream(valid.bytes()))) {
            TraceEpoch epoch = reader.nextEpoch();
            assertEquals(40, epoch.count());
            for (int i = 0; i < 40; i++) {
                assertEquals(valid.epochs.get(0).indices.get(i), epoch.pageIndex(i));
                assertArrayEquals(valid.epochs.get(0).pages.get(i), epoch.data()
                        .asSlice(TraceEpoch.dataOffset(i), 4096).toArray(ValueLayout.JAVA_BYTE), "page " + i);
            }
            reader.finish();
        }
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }
}
