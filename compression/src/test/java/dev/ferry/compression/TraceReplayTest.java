package dev.ferry.compression;

import dev.ferry.protocol.PageEncoding;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.NanoClock;
import dev.ferry.core.MigrationParameters;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Real guest-redis pages through every stage. */
class TraceReplayTest {
    private static final int IMAGE_PAGES = 3000;

    @Test
    void imagePagesRoundTripThroughEveryCodec() throws IOException, MalformedPayloadException {
        List<byte[]> pages = TracePages.image(IMAGE_PAGES);
        assertEquals(IMAGE_PAGES, pages.size());
        try (Arena arena = Arena.ofConfined(); Lz4Codec lz4 = new Lz4Codec(); ZstdCodec zstd = new ZstdCodec(1)) {
            MemorySegment page = arena.allocate(Pages.PAGE);
            MemorySegment packed = arena.allocate(ZstdCodec.maxCompressedLength(Pages.PAGE));
            MemorySegment out = arena.allocate(Pages.PAGE);
            long lz4Bytes = 0;
            long zstdBytes = 0;
            int zero = 0;
            for (byte[] p : pages) {
                MemorySegment.copy(p, 0, page, ValueLayout.JAVA_BYTE, 0, Pages.PAGE);
                zero += ZeroPages.isZero(page, 0) ? 1 : 0;
                int n = lz4.compress(page, 0, Pages.PAGE, packed, 0);
                lz4Bytes += n;
                lz4.decompress(packed, 0, n, out, 0, Pages.PAGE);
                assertArrayEquals(p, Pages.bytes(out, 0, Pages.PAGE));
                n = zstd.compress(page, 0, Pages.PAGE, packed, 0);
                zstdBytes += n;
                zstd.decompress(packed, 0, n, out, 0, Pages.PAGE);
                assertArrayEquals(p, Pages.bytes(out, 0, Pages.PAGE));
            }
            assertEquals(0, zero, "the image lists only non-zero pages");
            long raw = (long) pages.size() * Pages.PAGE;
            assertTrue(zstdBytes < lz4Bytes && lz4Bytes < raw, "lz4 " + lz4Bytes + ", zstd " + zstdBytes + " of " + raw);
        }
    }

    @Test
    void epochChangesMigrateExactlyThroughEncoderAndDecoder() throws IOException, MalformedPayloadException {
        List<byte[][]> pairs = TracePages.epochPairs(16, 4);
        assertTrue(pairs.size() > 1000, "sampled " + pairs.size() + " changed pages");
        MigrationParameters params = MigrationParameters.builder().build();
        EnumSet<Capability> all = EnumSet.of(Capability.ZERO_PAGES, Capability.XBZRLE, Capability.LZ4, Capability.ZSTD);
        int slots = 1 << 16;
        try (Arena arena = Arena.ofConfined(); PageEncoder encoder = new PageEncoder(all, params, params.xbzrleCacheSize(), NanoClock.SYSTEM);
             PageDecoder decoder = new PageDecoder(); GuestMemory dest = GuestMemory.anonymous((long) slots * Pages.PAGE)) {
            encoder.xbzrleActive(true);
            MemorySegment page = arena.allocate(Pages.PAGE);
            MemorySegment payload = arena.allocate(PageEncoder.MAX_PAYLOAD);
            long xbzrleOnly = 0;
            MemorySegment delta = arena.allocate(Pages.PAGE);
            for (int i = 0; i < pairs.size(); i++) {
                long index = i % slots;
                for (byte[] version : pairs.get(i)) {
                    MemorySegment.copy(version, 0, page, ValueLayout.JAVA_BYTE, 0, Pages.PAGE);
                    int len = encoder.encode(index, page, 0, payload, 0);
                    decoder.decode(encoder.encoding(), index, payload, 0, len, dest.segment());
                    assertArrayEquals(version, Pages.bytes(dest.segment(), index * Pages.PAGE, Pages.PAGE),
                            "pair " + i + " as " + PageEncoding.name(encoder.encoding()));
                }
                int d = Xbzrle.encode(Pages.nativeCopy(arena, pairs.get(i)[0]), 0, page, 0, delta, 0, Pages.PAGE);
                xbzrleOnly += d < 0 ? Pages.PAGE : d;
            }
            StageStats stats = encoder.stats();
            assertEquals(2L * pairs.size(), stats.pages());
            assertTrue(stats.pagesOf(PageEncoding.XBZRLE) + stats.pagesOf(PageEncoding.XBZRLE_LZ4)
                    + stats.pagesOf(PageEncoding.XBZRLE_ZSTD) > 0, stats.toString());
            assertTrue(stats.payloadBytes() < stats.rawBytes(), stats.toString());
            assertTrue(xbzrleOnly < (long) pairs.size() * Pages.PAGE, "redis rewrites pages partly");
        }
    }
}
