package dev.ferry.compression;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import dev.ferry.protocol.PageEncoding;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;
import org.junit.jupiter.api.AfterAll;

/**
 * Coverage-guided fuzzing of the destination's page stages: {@link PageDecoder#decode} for every
 * page encoding (and unknown ones), and {@link Xbzrle#decode} on its own. Each decode is checked
 * against an independent reference: QEMU's {@code xbzrle_decode_buffer} rules written out below,
 * the pure-Java LZ4 decompressor, zstd's byte-array API. Invariants: nothing but
 * {@link MalformedPayloadException} is thrown; a refused payload leaves the page as it was; an
 * accepted one gives the reference's page, touches no other page, and comes back through the
 * encoder (XBZRLE, LZ4, zstd) unchanged; one input allocates a bounded amount of heap.
 *
 * <p>Inputs: {@code encoding u8, index u8 (0..3, 3 being outside a guest of 3 pages; bit 7: the
 * payload on the heap, not native), length u16 BE, payload, the old page's first bytes}. Regression
 * inputs, real payloads recorded by the engine's {@code SeedStreams} and every input that ever
 * failed, are in {@code src/test/resources/dev/ferry/compression/PageDecoderFuzzTestInputs/}.
 */
class PageDecoderFuzzTest {
    private static final int PAGE = 4096;
    private static final int PAGES = 3;
    private static final byte SENTINEL = (byte) 0xA5;
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private static final Arena ARENA = Arena.ofShared();
    private static final MemorySegment RAM = ARENA.allocate(PAGES * PAGE, 64);
    private static final MemorySegment PAYLOAD = ARENA.allocate(PageEncoder.MAX_PAYLOAD + 64, 64);
    private static final MemorySegment HEAP_PAYLOAD = MemorySegment.ofArray(new byte[PageEncoder.MAX_PAYLOAD + 64]);
    private static final MemorySegment ENCODED = ARENA.allocate(2 * PAGE, 64);
    private static final MemorySegment XBZRLE_PAGE = ARENA.allocate(PAGE, 64);
    private static final MemorySegment OLD = ARENA.allocate(PAGE, 64);
    private static final MemorySegment NEW = ARENA.allocate(PAGE, 64);
    private static final MemorySegment BACK = ARENA.allocate(PAGE, 64);
    private static final PageDecoder DECODER = new PageDecoder();
    private static final Lz4Codec LZ4 = new Lz4Codec();
    private static final ZstdCodec ZSTD = new ZstdCodec(1);
    private static final LZ4SafeDecompressor LZ4_REFERENCE = LZ4Factory.safeInstance().safeDecompressor();
    private static final ZstdDecompressCtx ZSTD_REFERENCE = new ZstdDecompressCtx().setMagicless(true);
    /** Where the payload starts in its segment: not 0, so an offset the decoder forgets shows. */
    private static final int AT = 7;

    @AfterAll
    static void close() {
        DECODER.close();
        LZ4.close();
        ZSTD.close();
        ZSTD_REFERENCE.close();
    }

    @FuzzTest(maxDuration = "10m")
    void decode(byte[] input) {
        bounded(input, () -> decodeOnce(input));
    }

    @FuzzTest(maxDuration = "10m")
    void xbzrle(byte[] input) {
        bounded(input, () -> xbzrleOnce(input));
    }

    /** Runs a check twice, the second time counting its heap: the first loads and instruments classes. */
    private static void bounded(byte[] input, Runnable check) {
        check.run();
        long before = THREADS.getCurrentThreadAllocatedBytes();
        check.run();
        long allocated = THREADS.getCurrentThreadAllocatedBytes() - before;
        assertTrue(allocated < 256 * 1024 + 8L * input.length, allocated + " bytes of heap for " + input.length
                + " bytes of input");
    }

    private static void decodeOnce(byte[] input) {
        if (input.length < 4) {
            return;
        }
        int encoding = Byte.toUnsignedInt(input[0]) % (PageEncoding.COUNT + 1);
        int index = (input[1] & 0x7F) % (PAGES + 1);
        boolean heap = (input[1] & 0x80) != 0;
        int len = Math.min((Byte.toUnsignedInt(input[2]) << 8 | Byte.toUnsignedInt(input[3])), input.length - 4);
        len = Math.min(len, PageEncoder.MAX_PAYLOAD);
        byte[] payload = Arrays.copyOfRange(input, 4, 4 + len);
        byte[] old = oldPage(input, 4 + len);
        resetRam(old, index);
        MemorySegment source = heap ? HEAP_PAYLOAD : PAYLOAD;
        source.fill((byte) 0x5A);
        MemorySegment.copy(MemorySegment.ofArray(payload), 0, source, AT, len);

        byte[] expected = index < PAGES ? reference(encoding, payload, old) : null;
        try {
            DECODER.decode(encoding, index, source, AT, len, RAM);
            assertTrue(index < PAGES, "page " + index + " is outside the guest, yet decoded");
            assertNotNull(expected, PageEncoding.name(encoding) + " payload of " + len + " bytes accepted, the reference refuses it");
            assertArrayEquals(expected, page(index), PageEncoding.name(encoding) + " page differs from the reference");
            roundTrip(encoding, old, expected);
        } catch (MalformedPayloadException refused) {
            assertTrue(refused.getMessage() != null && !refused.getMessage().isEmpty(), "a refusal says why");
            assertTrue(expected == null, PageEncoding.name(encoding) + " payload refused (" + refused.getMessage()
                    + "), the reference accepts it");
            if (index < PAGES) {
                assertArrayEquals(old, page(index), "a refused payload leaves the page as it was");
            }
        }
        for (int p = 0; p < PAGES; p++) {
            if (p != index) {
                byte[] other = page(p);
                byte[] fill = new byte[PAGE];
                Arrays.fill(fill, SENTINEL);
                assertArrayEquals(fill, other, "page " + p + " is not the page decoded, yet changed");
            }
        }
    }

    private static void xbzrleOnce(byte[] input) {
        if (input.length < 2) {
            return;
        }
        int len = Math.min(Byte.toUnsignedInt(input[0]) << 8 | Byte.toUnsignedInt(input[1]), input.length - 2);
        len = Math.min(len, PAGE + 16);
        byte[] delta = Arrays.copyOfRange(input, 2, 2 + len);
        byte[] old = oldPage(input, 2 + len);
        MemorySegment page = XBZRLE_PAGE;
        page.copyFrom(MemorySegment.ofArray(old));
        byte[] expected = referenceXbzrle(delta, old);
        try {
            Xbzrle.decode(MemorySegment.ofArray(delta), 0, len, page, 0);
            assertNotNull(expected, "xbzrle delta of " + len + " bytes accepted, the reference refuses it");
            assertArrayEquals(expected, page.toArray(ValueLayout.JAVA_BYTE), "xbzrle page differs from the reference");
            roundTrip(PageEncoding.XBZRLE, old, expected);
        } catch (MalformedPayloadException refused) {
            assertTrue(expected == null, "xbzrle delta refused (" + refused.getMessage() + "), the reference accepts it");
            assertArrayEquals(old, page.toArray(ValueLayout.JAVA_BYTE), "a refused delta leaves the page as it was");
        }
    }

    /** The old page: the input's bytes after the payload, zeros past them. */
    private static byte[] oldPage(byte[] input, int from) {
        byte[] old = new byte[PAGE];
        if (from < input.length) {
            System.arraycopy(input, from, old, 0, Math.min(PAGE, input.length - from));
        }
        return old;
    }

    /** The page decoded holds the old page; every other page the sentinel. */
    private static void resetRam(byte[] old, int index) {
        RAM.fill(SENTINEL);
        if (index < PAGES) {
            MemorySegment.copy(MemorySegment.ofArray(old), 0, RAM, (long) index * PAGE, PAGE);
        }
    }

    private static byte[] page(int index) {
        return RAM.asSlice((long) index * PAGE, PAGE).toArray(ValueLayout.JAVA_BYTE);
    }

    /** The page an independent decoder makes of the payload, or null where it refuses it. */
    private static byte[] reference(int encoding, byte[] payload, byte[] old) {
        return switch (encoding) {
            case PageEncoding.RAW -> payload.length == PAGE ? payload.clone() : null;
            case PageEncoding.ZERO -> payload.length == 0 ? new byte[PAGE] : null;
            case PageEncoding.XBZRLE -> referenceXbzrle(payload, old);
            case PageEncoding.LZ4 -> payload.length == 0 ? null : decompressLz4(payload, 0, PAGE);
            case PageEncoding.ZSTD -> payload.length == 0 ? null : decompressZstd(payload, 0, PAGE);
            case PageEncoding.XBZRLE_LZ4, PageEncoding.XBZRLE_ZSTD -> {
                if (payload.length < 3) {
                    yield null;
                }
                int n = Byte.toUnsignedInt(payload[0]) | Byte.toUnsignedInt(payload[1]) << 8;
                if (n == 0 || n > PAGE) {
                    yield null;
                }
                byte[] delta = encoding == PageEncoding.XBZRLE_LZ4 ? decompressLz4(payload, 2, n) : decompressZstd(payload, 2, n);
                yield delta == null ? null : referenceXbzrle(delta, old);
            }
            default -> null;
        };
    }

    private static byte[] decompressLz4(byte[] src, int from, int expected) {
        byte[] out = new byte[expected];
        try {
            int n = LZ4_REFERENCE.decompress(src, from, src.length - from, out, 0, expected);
            return n == expected ? out : null;
        } catch (LZ4Exception e) {
            return null;
        }
    }

    private static byte[] decompressZstd(byte[] src, int from, int expected) {
        byte[] out = new byte[expected];
        try {
            int n = ZSTD_REFERENCE.decompressByteArray(out, 0, expected, src, from, src.length - from);
            return n == expected ? out : null;
        } catch (ZstdException e) {
            return null;
        }
    }

    /**
     * QEMU's {@code xbzrle_decode_buffer} into a copy of {@code old}, with Ferry's one extra rule
     * (a delta longer than a page is refused): null where it returns -1.
     */
    static byte[] referenceXbzrle(byte[] src, byte[] old) {
        if (src.length > PAGE) {
            return null;
        }
        byte[] dst = old.clone();
        int i = 0;
        int d = 0;
        while (i < src.length) {
            if (src.length - i < 2) {
                return null; // QEMU: "overflow" before a run header
            }
            int[] zrun = uleb(src, i);
            if (zrun == null || (i != 0 && zrun[0] == 0)) {
                return null;
            }
            i += zrun[1];
            d += zrun[0];
            if (d > PAGE) {
                return null;
            }
            if (src.length - i < 2) {
                return null;
            }
            int[] nzrun = uleb(src, i);
            if (nzrun == null || nzrun[0] == 0) {
                return null;
            }
            i += nzrun[1];
            if (d + nzrun[0] > PAGE || i + nzrun[0] > src.length) {
                return null;
            }
            System.arraycopy(src, i, dst, d, nzrun[0]);
            d += nzrun[0];
            i += nzrun[0];
        }
        return dst;
    }

    /** QEMU's {@code uleb128_decode_small}: value and size, or null for a value of 14 bits or more. */
    private static int[] uleb(byte[] src, int i) {
        int b0 = Byte.toUnsignedInt(src[i]);
        if ((b0 & 0x80) == 0) {
            return new int[] {b0, 1};
        }
        int b1 = Byte.toUnsignedInt(src[i + 1]);
        if ((b1 & 0x80) != 0) {
            return null;
        }
        return new int[] {(b0 & 0x7F) | b1 << 7, 2};
    }

    /** The decoded page, encoded again by Ferry's own stage and decoded into the old page: the same page. */
    private static void roundTrip(int encoding, byte[] old, byte[] page) {
        MemorySegment oldSegment = OLD.copyFrom(MemorySegment.ofArray(old));
        MemorySegment pageSegment = NEW.copyFrom(MemorySegment.ofArray(page));
        MemorySegment back = BACK.copyFrom(oldSegment);
        try {
            switch (encoding) {
                case PageEncoding.XBZRLE, PageEncoding.XBZRLE_LZ4, PageEncoding.XBZRLE_ZSTD -> {
                    int n = Xbzrle.encode(oldSegment, 0, pageSegment, 0, ENCODED, 0, PAGE);
                    if (n < 0) {
                        return; // larger than a page: the encoder sends the page another way
                    }
                    Xbzrle.decode(ENCODED, 0, n, back, 0);
                }
                case PageEncoding.LZ4 -> {
                    int n = LZ4.compress(pageSegment, 0, PAGE, ENCODED, 0);
                    LZ4.decompress(ENCODED, 0, n, back, 0, PAGE);
                }
                case PageEncoding.ZSTD -> {
                    int n = ZSTD.compress(pageSegment, 0, PAGE, ENCODED, 0);
                    ZSTD.decompress(ENCODED, 0, n, back, 0, PAGE);
                }
                default -> {
                    return;
                }
            }
        } catch (MalformedPayloadException e) {
            throw new AssertionError(PageEncoding.name(encoding) + ": the encoder's own output does not decode: " + e, e);
        }
        assertEquals(-1L, back.mismatch(pageSegment), PageEncoding.name(encoding) + " round trip");
    }
}
