package dev.ferry.compression;

import dev.ferry.protocol.PageEncoding;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.NanoClock;
import dev.ferry.core.MigrationParameters;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** PageEncoder and PageDecoder together, as the transport uses them. */
class PageCodecTest {
    private static final int PAGES = 64;
    private static final Set<Capability> ALL = EnumSet.of(Capability.ZERO_PAGES, Capability.XBZRLE, Capability.LZ4,
            Capability.ZSTD);

    private final Arena arena = Arena.ofShared();
    private final MemorySegment page = arena.allocate(Pages.PAGE, 64);
    private final MemorySegment payload = arena.allocate(PageEncoder.MAX_PAYLOAD, 64);

    @AfterEach
    void close() {
        arena.close();
    }

    @Test
    void everyPageOfEveryRoundArrivesExactlyWithAllStages() throws MalformedPayloadException {
        migrate(ALL, true, 31);
    }

    @Test
    void everyPageArrivesExactlyWithEachStageAlone() throws MalformedPayloadException {
        migrate(EnumSet.of(Capability.ZERO_PAGES), true, 32);
        migrate(EnumSet.of(Capability.XBZRLE), true, 33);
        migrate(EnumSet.of(Capability.LZ4), true, 34);
        migrate(EnumSet.of(Capability.ZSTD), true, 35);
        migrate(EnumSet.of(Capability.XBZRLE, Capability.LZ4), true, 36);
        migrate(EnumSet.of(Capability.XBZRLE, Capability.ZSTD), true, 37);
        migrate(EnumSet.noneOf(Capability.class), true, 38);
    }

    @Test
    void compressionOffSendsNoLz4OrZstd() throws MalformedPayloadException {
        StageStats stats = migrate(ALL, false, 39);
        for (int code : new int[] {PageEncoding.LZ4, PageEncoding.ZSTD, PageEncoding.XBZRLE_LZ4,
                PageEncoding.XBZRLE_ZSTD}) {
            assertEquals(0, stats.pagesOf(code), PageEncoding.name(code));
        }
        assertEquals(0, stats.compressNanos());
        assertTrue(stats.pagesOf(PageEncoding.XBZRLE) > 0);
    }

    @Test
    void theLastPassDiffsAgainstTheCacheButCachesNothingMore() throws MalformedPayloadException {
        Random rnd = new Random(40);
        try (PageEncoder encoder = new PageEncoder(EnumSet.of(Capability.XBZRLE), MigrationParameters.defaults(), MigrationParameters.defaults().xbzrleCacheSize(), NanoClock.SYSTEM);
             PageDecoder decoder = new PageDecoder();
             GuestMemory dest = GuestMemory.anonymous(Pages.PAGE)) {
            encoder.xbzrleActive(true);
            byte[] content = Pages.anyPage(rnd);
            for (int send = 0; send < 4; send++) {
                if (send == 1) {
                    encoder.lastPass();
                }
                content[100 * send] ^= 0x5A;
                MemorySegment.copy(content, 0, page, ValueLayout.JAVA_BYTE, 0, Pages.PAGE);
                int len = encoder.encode(0, page, 0, payload, 0);
                decoder.decode(encoder.encoding(), 0, payload, 0, len, dest.segment());
                assertArrayEquals(content, Pages.bytes(dest.segment(), 0, Pages.PAGE), "send " + send);
                assertEquals(send == 1 ? PageEncoding.XBZRLE : PageEncoding.RAW, encoder.encoding(),
                        "send " + send + ": only the page cached before the last pass is diffed");
            }
            assertEquals(1, encoder.stats().xbzrleHits());
        }
    }

    /**
     * Rounds of a little guest: every round dirties some pages in guest-like ways, the encoder
     * sends them, the decoder applies them to a second memory; after each round both match. Each
     * payload is checked to be the smallest candidate, computed independently.
     */
    private StageStats migrate(Set<Capability> caps, boolean compress, long seed) throws MalformedPayloadException {
        Random rnd = new Random(seed);
        MigrationParameters params = MigrationParameters.builder().xbzrleCacheSize(16L * Pages.PAGE).zstdLevel(3).build();
        byte[][] source = new byte[PAGES][];
        byte[][] sent = new byte[PAGES][];
        long[] expectedPages = new long[PageEncoding.COUNT];
        long[] expectedSaved = new long[PageEncoding.COUNT];
        try (PageEncoder encoder = new PageEncoder(caps, params, params.xbzrleCacheSize(), NanoClock.SYSTEM); PageDecoder decoder = new PageDecoder();
             GuestMemory dest = GuestMemory.anonymous((long) PAGES * Pages.PAGE);
             Lz4Codec lz4 = new Lz4Codec(); ZstdCodec zstd = new ZstdCodec(3);
             XbzrleCache shadow = new XbzrleCache(16L * Pages.PAGE)) {
            encoder.compressOneIn(compress ? 1 : 0);
            encoder.xbzrleActive(true);
            for (int i = 0; i < PAGES; i++) {
                source[i] = Pages.anyPage(rnd);
            }
            for (int round = 0; round < 12; round++) {
                for (int i = 0; i < PAGES; i++) {
                    if (round > 0 && rnd.nextInt(3) != 0) {
                        continue;
                    }
                    if (round > 0) {
                        source[i] = rnd.nextInt(10) == 0 ? new byte[Pages.PAGE] : Pages.mutate(source[i], rnd);
                    }
                    MemorySegment.copy(source[i], 0, page, ValueLayout.JAVA_BYTE, 0, Pages.PAGE);
                    int expected = smallest(caps, compress, i, shadow, lz4, zstd);
                    int len = encoder.encode(i, page, 0, payload, 0);
                    int code = encoder.encoding();
                    assertEquals(expected, len, "payload length of page " + i + " in round " + round + " as "
                            + PageEncoding.name(code));
                    assertTrue(len <= PageEncoder.MAX_PAYLOAD);
                    expectedPages[code]++;
                    expectedSaved[code] += Pages.PAGE - len;
                    decoder.decode(code, i, payload, 0, len, dest.segment());
                    sent[i] = source[i];
                }
                for (int i = 0; i < PAGES; i++) {
                    if (sent[i] != null) {
                        assertArrayEquals(sent[i], Pages.bytes(dest.segment(), (long) i * Pages.PAGE, Pages.PAGE),
                                "page " + i + " after round " + round);
                    }
                }
            }
            StageStats stats = encoder.stats();
            for (int c = 0; c < PageEncoding.COUNT; c++) {
                assertEquals(expectedPages[c], stats.pagesOf(c), "pages of " + PageEncoding.name(c));
                assertEquals(expectedSaved[c], stats.bytesSavedOf(c), "bytes saved by " + PageEncoding.name(c));
            }
            long payloadTotal = stats.rawBytes() - java.util.Arrays.stream(expectedSaved).sum();
            assertEquals(payloadTotal, stats.payloadBytes());
            if (caps.contains(Capability.XBZRLE)) {
                assertEquals(shadow.hits(), stats.xbzrleHits());
                assertEquals(shadow.misses(), stats.xbzrleMisses());
                assertEquals(shadow.evictions(), stats.xbzrleEvictions());
                assertTrue(stats.xbzrleHits() > 0 && stats.xbzrleMisses() > 0 && stats.xbzrleEvictions() > 0, stats.toString());
            }
            return stats;
        }
    }

    /** The payload length the encoder must choose, from the stages run one by one on `page`. */
    private int smallest(Set<Capability> caps, boolean compress, long index, XbzrleCache shadow, Lz4Codec lz4,
                         ZstdCodec zstd) {
        if (caps.contains(Capability.ZERO_PAGES) && ZeroPages.isZero(page, 0)) {
            if (caps.contains(Capability.XBZRLE)) {
                shadow.invalidate(index);
            }
            return 0;
        }
        int best = Pages.PAGE;
        MemorySegment delta = arena.allocate(Pages.PAGE);
        MemorySegment out = arena.allocate(ZstdCodec.maxCompressedLength(Pages.PAGE));
        int deltaLength = -1;
        if (caps.contains(Capability.XBZRLE)) {
            long at = shadow.lookup(index);
            if (at >= 0) {
                deltaLength = Xbzrle.encode(shadow.segment(), at, page, 0, delta, 0, Pages.PAGE);
                if (deltaLength == 0) {
                    return 0;
                }
                if (deltaLength > 0) {
                    best = Math.min(best, deltaLength);
                }
            }
            shadow.insert(index, page, 0);
        }
        if (compress && caps.contains(Capability.LZ4)) {
            best = Math.min(best, lz4.compress(page, 0, Pages.PAGE, out, 0));
            if (deltaLength > 0) {
                best = Math.min(best, 2 + lz4.compress(delta, 0, deltaLength, out, 0));
            }
        }
        if (compress && caps.contains(Capability.ZSTD)) {
            best = Math.min(best, zstd.compress(page, 0, Pages.PAGE, out, 0));
            if (deltaLength > 0) {
                best = Math.min(best, 2 + zstd.compress(delta, 0, deltaLength, out, 0));
            }
        }
        return best;
    }

    @Test
    void badPayloadsOfEveryEncodingAreRejectedAndLeaveThePage() throws MalformedPayloadException {
        Random rnd = new Random(41);
        MigrationParameters params = MigrationParameters.builder().xbzrleCacheSize(1 << 20).build();
        int[] seen = new int[PageEncoding.COUNT];
        try (PageDecoder decoder = new PageDecoder(); GuestMemory dest = GuestMemory.anonymous(4L * Pages.PAGE)) {
            // zstd nearly always beats LZ4 when both are negotiated, so LZ4 payloads need an encoder of their own
            for (Set<Capability> caps : List.of(ALL, EnumSet.of(Capability.ZERO_PAGES, Capability.XBZRLE,
                    Capability.LZ4))) {
                try (PageEncoder encoder = new PageEncoder(caps, params, params.xbzrleCacheSize(), NanoClock.SYSTEM)) {
                    encoder.xbzrleActive(true);
                    for (int iter = 0; iter < 300; iter++) {
                        seen[sendBadPayloads(encoder, decoder, dest, rnd)]++;
                    }
                }
            }
            for (int c = 0; c < PageEncoding.COUNT; c++) {
                // a dedup reference is the page stream's, applied by PageApplier (DedupReferencesTest), never encoded here
                if (c != PageEncoding.DEDUP) {
                    assertNotEquals(0, seen[c], "no " + PageEncoding.name(c) + " payload was exercised");
                }
            }
            MemorySegment raw = Pages.nativeCopy(arena, new byte[Pages.PAGE]);
            assertThrows(MalformedPayloadException.class, () -> decoder.decode(PageEncoding.COUNT, 1, raw, 0, 0,
                    dest.segment()));
            assertThrows(MalformedPayloadException.class, () -> decoder.decode(PageEncoding.RAW, 4, raw, 0,
                    Pages.PAGE, dest.segment()));
            MemorySegment badLength = Pages.nativeCopy(arena, new byte[] {0, 0, 1, 2, 3});
            assertThrows(MalformedPayloadException.class, () -> decoder.decode(PageEncoding.XBZRLE_LZ4, 1, badLength,
                    0, 5, dest.segment()), "delta length 0");
        }
    }

    /**
     * Sends a page and a new version of it; the new version's payload, truncated, lengthened and
     * with bytes flipped, must be rejected with page 1 left as it was, or (a flip in literal
     * bytes) decode to some page. Returns the new version's encoding.
     */
    private int sendBadPayloads(PageEncoder encoder, PageDecoder decoder, GuestMemory dest, Random rnd)
            throws MalformedPayloadException {
        byte[] old = Pages.anyPage(rnd);
        MemorySegment.copy(old, 0, page, ValueLayout.JAVA_BYTE, 0, Pages.PAGE);
        int first = encoder.encode(1, page, 0, payload, 0);
        decoder.decode(encoder.encoding(), 1, payload, 0, first, dest.segment());
        byte[] cur = rnd.nextBoolean() ? Pages.mutate(old, rnd) : Pages.anyPage(rnd);
        MemorySegment.copy(cur, 0, page, ValueLayout.JAVA_BYTE, 0, Pages.PAGE);
        encoder.compressOneIn(rnd.nextInt(3));
        int len = encoder.encode(1, page, 0, payload, 0);
        int code = encoder.encoding();
        byte[] good = Pages.bytes(payload, 0, len);
        if (len > 0) {
            int cut = rnd.nextInt(len);
            rejected(decoder, code, cut, dest, old, "truncated to " + cut);
        }
        rejected(decoder, code, len + 1, dest, old, "one byte too long");
        MemorySegment oldCopy = Pages.nativeCopy(arena, old);
        for (int flips = 0; flips < 4 && len > 0; flips++) {
            int at = rnd.nextInt(len);
            payload.set(ValueLayout.JAVA_BYTE, at, (byte) (good[at] ^ (1 + rnd.nextInt(255))));
            try {
                decoder.decode(code, 1, payload, 0, len, dest.segment());
                decoder.decode(PageEncoding.RAW, 1, oldCopy, 0, Pages.PAGE, dest.segment());
            } catch (MalformedPayloadException e) {
                assertArrayEquals(old, Pages.bytes(dest.segment(), Pages.PAGE, Pages.PAGE),
                        "page changed by a rejected " + PageEncoding.name(code) + ": " + e.getMessage());
            }
            MemorySegment.copy(good, 0, payload, ValueLayout.JAVA_BYTE, 0, len);
        }
        decoder.decode(code, 1, payload, 0, len, dest.segment());
        assertArrayEquals(cur, Pages.bytes(dest.segment(), Pages.PAGE, Pages.PAGE));
        return code;
    }

    private void rejected(PageDecoder decoder, int code, int len, GuestMemory dest, byte[] old, String what) {
        if (code == PageEncoding.XBZRLE && len < Pages.PAGE) {
            // a shorter delta can be a valid delta of fewer runs; that case is covered in XbzrleTest
            return;
        }
        MalformedPayloadException e = assertThrows(MalformedPayloadException.class,
                () -> decoder.decode(code, 1, payload, 0, len, dest.segment()), PageEncoding.name(code) + " " + what);
        assertTrue(e.getMessage().length() > 10);
        assertArrayEquals(old, Pages.bytes(dest.segment(), Pages.PAGE, Pages.PAGE),
                "page changed by a rejected " + PageEncoding.name(code) + " payload " + what);
    }

    @Test
    void xbzrleNeitherCachesNorDeltasUntilActivated() {
        MigrationParameters params = MigrationParameters.defaults();
        try (PageEncoder encoder = new PageEncoder(EnumSet.of(Capability.XBZRLE), params, params.xbzrleCacheSize(), NanoClock.SYSTEM);
             Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(Pages.PAGE);
            MemorySegment out = arena.allocate(PageEncoder.MAX_PAYLOAD);
            page.fill((byte) 7);
            encoder.encode(3, page, 0, out, 0);
            page.set(ValueLayout.JAVA_BYTE, 100, (byte) 8);
            encoder.encode(3, page, 0, out, 0);
            assertEquals(PageEncoding.RAW, encoder.encoding(), "inactive: a re-sent page crosses raw");
            assertEquals(0, encoder.stats().xbzrleHits() + encoder.stats().xbzrleMisses());

            encoder.xbzrleActive(true);
            encoder.encode(3, page, 0, out, 0);
            page.set(ValueLayout.JAVA_BYTE, 200, (byte) 9);
            int length = encoder.encode(3, page, 0, out, 0);
            assertEquals(PageEncoding.XBZRLE, encoder.encoding(), "active: cached on the first send, delta on the next");
            assertTrue(length > 0 && length < 16, "a one-byte change is a tiny delta, got " + length);
        }
    }

    @Test
    void aTrialSaysWhatAPageWouldCrossWithAndChangesNothing() {
        MigrationParameters params = MigrationParameters.defaults();
        try (PageEncoder encoder = new PageEncoder(EnumSet.of(Capability.ZERO_PAGES, Capability.XBZRLE), params,
                params.xbzrleCacheSize(), NanoClock.SYSTEM); Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(Pages.PAGE);
            MemorySegment out = arena.allocate(PageEncoder.MAX_PAYLOAD);
            assertEquals(0, encoder.trialLength(3, page, 0), "a zero page");
            page.fill((byte) 7);
            assertEquals(Pages.PAGE, encoder.trialLength(3, page, 0), "XBZRLE inactive: a whole page");
            encoder.xbzrleActive(true);
            encoder.encode(3, page, 0, out, 0);
            page.set(ValueLayout.JAVA_BYTE, 200, (byte) 9);
            StageStats before = encoder.stats();
            int trial = encoder.trialLength(3, page, 0);
            assertEquals(before.xbzrleHits(), encoder.stats().xbzrleHits(), "a trial counts no hit");
            assertEquals(before.pages(), encoder.stats().pages(), "a trial sends nothing");
            assertEquals(Pages.PAGE, encoder.trialLength(4, page, 0), "a page XBZRLE does not hold: a whole page");
            int sent = encoder.encode(3, page, 0, out, 0);
            assertEquals(PageEncoding.XBZRLE, encoder.encoding());
            assertEquals(sent, trial, "the trial's length is the delta's");
            assertEquals(0, encoder.trialLength(3, page, 0), "unchanged since it was sent: an empty delta");
        }
    }

    @Test
    void countsWhatTheCompressorsWereTriedOnAndSkipsThemWhenOff() {
        MigrationParameters params = MigrationParameters.defaults();
        try (PageEncoder encoder = new PageEncoder(EnumSet.of(Capability.LZ4), params, params.xbzrleCacheSize(), NanoClock.SYSTEM);
             Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(Pages.PAGE);
            MemorySegment out = arena.allocate(PageEncoder.MAX_PAYLOAD);
            long payload = 0;
            for (int i = 0; i < 4; i++) {
                page.fill((byte) ('a' + i));
                payload += encoder.encode(i, page, 0, out, 0);
            }
            StageStats stats = encoder.stats();
            assertEquals(4, stats.pagesOf(PageEncoding.LZ4), "a uniform page compresses");
            assertEquals(4L * Pages.PAGE, stats.triedBeforeBytes());
            assertEquals(payload, stats.triedPayloadBytes());

            assertEquals(4, stats.triedPages());

            encoder.compressOneIn(0);
            encoder.encode(99, page, 0, out, 0);
            assertEquals(PageEncoding.RAW, encoder.encoding(), "off means no page is tried");
            assertEquals(4L * Pages.PAGE, encoder.stats().triedBeforeBytes());
            assertEquals(4, encoder.stats().triedPages());
        }
    }

    @Test
    void aSampleTriesTheCompressorsOnOnePageInN() {
        try (PageEncoder encoder = new PageEncoder(EnumSet.of(Capability.ZERO_PAGES, Capability.LZ4),
                MigrationParameters.defaults(), MigrationParameters.defaults().xbzrleCacheSize(), NanoClock.SYSTEM);
             Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(Pages.PAGE);
            MemorySegment out = arena.allocate(PageEncoder.MAX_PAYLOAD);
            page.fill((byte) 'x');
            encoder.compressOneIn(8);
            int compressed = 0;
            for (int i = 0; i < 64; i++) {
                encoder.encode(i, page, 0, out, 0);
                if (encoder.encoding() == PageEncoding.LZ4) {
                    compressed++;
                    assertEquals(7, i % 8, "the eighth page of every eight: " + i);
                }
            }
            assertEquals(8, compressed);
            assertEquals(8, encoder.stats().triedPages());
            assertEquals(56, encoder.stats().pagesOf(PageEncoding.RAW), "the others cross raw");
            assertTrue(encoder.stats().compressNanos() > 0, "the sample's cost is measured");
        }
    }
}
