package dev.ferry.compression;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class XbzrleTest {
    /** Enough for any delta of a page: alternating changed bytes cost 3 bytes per 2. */
    private static final int UNBOUNDED = Pages.PAGE * 3 / 2 + 16;

    private final Arena arena = Arena.ofShared();

    @AfterEach
    void close() {
        arena.close();
    }

    @Test
    void matchesQemuBytesForAKnownPair() {
        byte[] old = new byte[Pages.PAGE];
        byte[] cur = new byte[Pages.PAGE];
        cur[0] = 1;
        cur[1] = 2;
        cur[2] = 3;
        cur[100] = 4;
        cur[301] = 5;
        byte[] expected = {0x00, 0x03, 1, 2, 3, 0x61, 0x01, 4, (byte) 0xC8, 0x01, 0x01, 5};
        assertArrayEquals(expected, encode(old, cur, UNBOUNDED));
    }

    @Test
    void identicalPagesEncodeToNothing() {
        byte[] p = Pages.page(Pages.Kind.TEXT, new Random(1));
        assertEquals(0, Xbzrle.encode(Pages.nativeCopy(arena, p), 0, Pages.nativeCopy(arena, p), 0,
                arena.allocate(UNBOUNDED), 0, Pages.PAGE));
    }

    @Test
    void encodesExactlyAsQemuIncludingBudgetFailures() {
        Random rnd = new Random(42);
        for (int iter = 0; iter < 3000; iter++) {
            byte[] old = Pages.anyPage(rnd);
            byte[] cur = Pages.mutate(old, rnd);
            int budget = rnd.nextBoolean() ? Pages.PAGE : rnd.nextInt(UNBOUNDED);
            byte[] expected = new byte[UNBOUNDED];
            int qemu = QemuXbzrle.encode(old, cur, expected, budget);
            MemorySegment dst = arena.allocate(UNBOUNDED);
            int ours = Xbzrle.encode(Pages.nativeCopy(arena, old), 0, Pages.nativeCopy(arena, cur), 0, dst, 0, budget);
            assertEquals(qemu, ours, "encoded length, iteration " + iter);
            if (ours > 0) {
                assertArrayEquals(java.util.Arrays.copyOf(expected, qemu), Pages.bytes(dst, 0, ours), "iteration " + iter);
            }
        }
    }

    @Test
    void everyDeltaRoundTripsAtUnalignedOffsets() throws MalformedPayloadException {
        Random rnd = new Random(7);
        for (int iter = 0; iter < 3000; iter++) {
            byte[] old = Pages.anyPage(rnd);
            byte[] cur = Pages.mutate(old, rnd);
            int skew = rnd.nextInt(8);
            MemorySegment oldSeg = arena.allocate(Pages.PAGE + 8);
            MemorySegment curSeg = arena.allocate(Pages.PAGE + 8);
            MemorySegment.copy(Pages.nativeCopy(arena, old), 0, oldSeg, skew, Pages.PAGE);
            MemorySegment.copy(Pages.nativeCopy(arena, cur), 0, curSeg, skew, Pages.PAGE);
            MemorySegment dst = arena.allocate(UNBOUNDED + 8);
            int len = Xbzrle.encode(oldSeg, skew, curSeg, skew, dst, skew, Pages.PAGE);
            if (len < 0) {
                continue;
            }
            Xbzrle.decode(dst, skew, len, oldSeg, skew);
            assertArrayEquals(cur, Pages.bytes(oldSeg, skew, Pages.PAGE), "iteration " + iter);
        }
    }

    @Test
    void budgetFailureMeansTheDeltaWouldNotFit() {
        Random rnd = new Random(9);
        for (int iter = 0; iter < 2000; iter++) {
            byte[] old = Pages.anyPage(rnd);
            byte[] cur = Pages.mutate(old, rnd);
            int full = encode(old, cur, UNBOUNDED).length;
            int budget = rnd.nextInt(Pages.PAGE);
            MemorySegment dst = arena.allocate(budget + 1);
            int len = Xbzrle.encode(Pages.nativeCopy(arena, old), 0, Pages.nativeCopy(arena, cur), 0, dst, 0, budget);
            if (len >= 0) {
                assertEquals(full, len);
                assertTrue(len <= budget);
            } else {
                assertTrue(full > budget - 2, "rejected a " + full + "-byte delta for a budget of " + budget);
            }
        }
    }

    @Test
    void malformedDeltasAreRejectedAndThePageIsUntouched() {
        byte[][] bad = {
            {0x05},                                 // a lone byte: truncated header
            {0x00, 0x05, 1, 2},                     // changed run longer than the data
            {0x00, 0x00, 0x00},                     // changed run of 0
            {0x00, 0x01, 9, 0x00, 0x01, 9},         // zero run of 0 after the first pair
            {(byte) 0x80, (byte) 0x80, 0x01, 1},    // uleb of more than 14 bits
            {(byte) 0x80, 0x20, 0x01, 1},           // zero run of 4096 then a changed byte: overrun
            {(byte) 0xA0, 0x1F, (byte) 0xC8, 0x01}, // zero run 4000, changed run 200: overrun
            {0x00, 0x01, 7, 0x01},                  // truncated after a zero run
        };
        for (byte[] delta : bad) {
            byte[] original = Pages.page(Pages.Kind.TEXT, new Random(3));
            MemorySegment page = Pages.nativeCopy(arena, original);
            MalformedPayloadException e = assertThrows(MalformedPayloadException.class,
                    () -> Xbzrle.decode(Pages.nativeCopy(arena, delta), 0, delta.length, page, 0));
            assertTrue(e.getMessage().contains("byte"), e.getMessage());
            assertArrayEquals(original, Pages.bytes(page, 0, Pages.PAGE));
        }
    }

    @Test
    void everyTruncationIsRejectedOrIsAWholePairPrefix() {
        Random rnd = new Random(11);
        MemorySegment page = arena.allocate(Pages.PAGE);
        for (int iter = 0; iter < 100; iter++) {
            byte[] old = Pages.page(Pages.Kind.TEXT, rnd);
            byte[] cur = Pages.mutate(old, rnd);
            byte[] delta = encode(old, cur, UNBOUNDED);
            MemorySegment deltaSeg = Pages.nativeCopy(arena, delta);
            for (int cut = 1; cut < delta.length; cut++) {
                MemorySegment.copy(old, 0, page, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, Pages.PAGE);
                try {
                    Xbzrle.decode(deltaSeg, 0, cut, page, 0);
                } catch (MalformedPayloadException e) {
                    assertArrayEquals(old, Pages.bytes(page, 0, Pages.PAGE), "page touched by a rejected delta");
                    continue;
                }
                byte[] partial = Pages.bytes(page, 0, Pages.PAGE);
                assertArrayEquals(encode(old, partial, UNBOUNDED), java.util.Arrays.copyOf(delta, cut),
                        "an accepted truncation must be the delta of a page");
            }
        }
    }

    private byte[] encode(byte[] old, byte[] cur, int budget) {
        MemorySegment dst = arena.allocate(UNBOUNDED);
        int len = Xbzrle.encode(Pages.nativeCopy(arena, old), 0, Pages.nativeCopy(arena, cur), 0, dst, 0, budget);
        assertTrue(len >= 0);
        return Pages.bytes(dst, 0, len);
    }

    /** A line-by-line port of QEMU's {@code xbzrle_encode_buffer} (migration/xbzrle.c), as the reference. */
    private static final class QemuXbzrle {
        static int encode(byte[] oldBuf, byte[] newBuf, byte[] dst, int dlen) {
            int slen = Pages.PAGE;
            int zrunLen = 0;
            int nzrunLen = 0;
            int d = 0;
            int i = 0;
            while (i < slen) {
                if (d + 2 > dlen) {
                    return -1;
                }
                int res = (slen - i) % 8;
                while (res != 0 && oldBuf[i] == newBuf[i]) {
                    zrunLen++;
                    i++;
                    res--;
                }
                if (res == 0) {
                    while (i < slen && word(oldBuf, i) == word(newBuf, i)) {
                        i += 8;
                        zrunLen += 8;
                    }
                    while (i < slen && oldBuf[i] == newBuf[i]) {
                        zrunLen++;
                        i++;
                    }
                }
                if (zrunLen == slen) {
                    return 0;
                }
                if (i == slen) {
                    return d;
                }
                d += uleb(dst, d, zrunLen);
                zrunLen = 0;
                int nzrunStart = i;
                if (d + 2 > dlen) {
                    return -1;
                }
                res = (slen - i) % 8;
                while (res != 0 && oldBuf[i] != newBuf[i]) {
                    i++;
                    nzrunLen++;
                    res--;
                }
                if (res == 0) {
                    long mask = 0x0101010101010101L;
                    while (i < slen) {
                        long xor = word(oldBuf, i) ^ word(newBuf, i);
                        if (((xor - mask) & ~xor & (mask << 7)) != 0) {
                            while (oldBuf[i] != newBuf[i]) {
                                nzrunLen++;
                                i++;
                            }
                            break;
                        }
                        i += 8;
                        nzrunLen += 8;
                    }
                }
                d += uleb(dst, d, nzrunLen);
                if (d + nzrunLen > dlen) {
                    return -1;
                }
                System.arraycopy(newBuf, nzrunStart, dst, d, nzrunLen);
                d += nzrunLen;
                nzrunLen = 0;
            }
            return d;
        }

        private static long word(byte[] b, int i) {
            return java.nio.ByteBuffer.wrap(b, i, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        }

        private static int uleb(byte[] out, int at, int n) {
            if (n < 0x80) {
                out[at] = (byte) n;
                return 1;
            }
            out[at] = (byte) ((n & 0x7f) | 0x80);
            out[at + 1] = (byte) (n >>> 7);
            return 2;
        }
    }
}
