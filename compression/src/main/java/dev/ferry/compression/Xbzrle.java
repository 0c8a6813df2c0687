package dev.ferry.compression;

import dev.ferry.core.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * XBZRLE, the delta QEMU sends for a page it sent before ({@code migration/xbzrle.c}), byte for
 * byte compatible with {@code xbzrle_encode_buffer} and {@code xbzrle_decode_buffer} for 4096-byte
 * pages.
 *
 * <p>The delta between the old and the current page is a sequence of pairs
 *
 * <pre>
 * zrun    uleb128  bytes unchanged (0 only for the first pair, when the page starts changed)
 * nzrun   uleb128  bytes changed, 1..4096
 * data    nzrun    the changed bytes, literally
 * </pre>
 *
 * Runs are maximal, so the encoding of two pages is unique. The unchanged run after the last
 * changed run is not written; identical pages encode to nothing. A uleb128 here is 1 or 2 bytes
 * (QEMU's {@code uleb128_encode_small}, values below 2^14): 7 low bits per byte, high bit set on
 * the first byte if a second follows, and the second byte's high bit must be clear.
 *
 * <p>The encoder gives up when the delta would exceed the caller's budget, with QEMU's exact
 * checks (it reserves two bytes before each run header), so a delta QEMU would reject is
 * rejected here too. The decoder validates the whole delta before writing a byte.
 */
public final class Xbzrle {
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final int PAGE = GuestMemory.PAGE_SIZE;
    private static final long ONES = 0x0101010101010101L;
    private static final long HIGHS = 0x8080808080808080L;

    private Xbzrle() {
    }

    /**
     * Encodes the delta from the page at {@code old[oldOff..]} to the page at {@code cur[curOff..]}
     * into {@code dst[dstOff..dstOff + budget)}.
     *
     * @return the delta's length; 0 if the pages are identical; -1 if it would exceed
     *     {@code budget} (then {@code dst} holds garbage)
     */
    public static int encode(MemorySegment old, long oldOff, MemorySegment cur, long curOff,
                             MemorySegment dst, long dstOff, int budget) {
        int d = 0;
        int i = 0;
        while (i < PAGE) {
            if (d + 2 > budget) {
                return -1;
            }
            int zrunStart = i;
            i = firstDifferent(old, oldOff, cur, curOff, i);
            if (i - zrunStart == PAGE) {
                return 0;
            }
            if (i == PAGE) {
                return d;
            }
            d = putUleb(dst, dstOff, d, i - zrunStart);
            if (d + 2 > budget) {
                return -1;
            }
            int nzrunStart = i;
            i = firstEqual(old, oldOff, cur, curOff, i);
            int nzrun = i - nzrunStart;
            d = putUleb(dst, dstOff, d, nzrun);
            if (d + nzrun > budget) {
                return -1;
            }
            MemorySegment.copy(cur, curOff + nzrunStart, dst, dstOff + d, nzrun);
            d += nzrun;
        }
        return d;
    }

    /** The first byte position at or after {@code i} where the pages differ, or 4096. */
    private static int firstDifferent(MemorySegment old, long oldOff, MemorySegment cur, long curOff, int i) {
        while (i <= PAGE - 8) {
            long x = old.get(LONG, oldOff + i) ^ cur.get(LONG, curOff + i);
            if (x != 0) {
                return i + (Long.numberOfTrailingZeros(x) >>> 3);
            }
            i += 8;
        }
        while (i < PAGE && old.get(ValueLayout.JAVA_BYTE, oldOff + i) == cur.get(ValueLayout.JAVA_BYTE, curOff + i)) {
            i++;
        }
        return i;
    }

    /**
     * The first byte position at or after {@code i} where the pages agree, or 4096. A byte agrees
     * where the xor of the words has a zero byte; the lowest set bit of the classic has-zero-byte
     * mask marks exactly the first one (little-endian loads put byte 0 lowest).
     */
    private static int firstEqual(MemorySegment old, long oldOff, MemorySegment cur, long curOff, int i) {
        while (i <= PAGE - 8) {
            long x = old.get(LONG, oldOff + i) ^ cur.get(LONG, curOff + i);
            long zeroBytes = (x - ONES) & ~x & HIGHS;
            if (zeroBytes != 0) {
                return i + (Long.numberOfTrailingZeros(zeroBytes) >>> 3);
            }
            i += 8;
        }
        while (i < PAGE && old.get(ValueLayout.JAVA_BYTE, oldOff + i) != cur.get(ValueLayout.JAVA_BYTE, curOff + i)) {
            i++;
        }
        return i;
    }

    private static int putUleb(MemorySegment dst, long dstOff, int d, int n) {
        if (n < 0x80) {
            dst.set(ValueLayout.JAVA_BYTE, dstOff + d, (byte) n);
            return d + 1;
        }
        dst.set(ValueLayout.JAVA_BYTE, dstOff + d, (byte) (n | 0x80));
        dst.set(ValueLayout.JAVA_BYTE, dstOff + d + 1, (byte) (n >>> 7));
        return d + 2;
    }

    /**
     * Applies the delta at {@code src[off..off + len)} to the page at {@code page[pageOff..]}.
     * The whole delta is checked first, so a malformed one leaves the page untouched.
     *
     * @throws MalformedPayloadException if the delta is truncated, has an invalid run length, or
     *     runs past the end of the page
     */
    public static void decode(MemorySegment src, long off, int len, MemorySegment page, long pageOff)
            throws MalformedPayloadException {
        validate(src, off, len);
        int i = 0;
        int d = 0;
        while (i < len) {
            int zrun = uleb(src, off, i);
            i += ulebSize(src, off, i);
            d += zrun;
            int nzrun = uleb(src, off, i);
            i += ulebSize(src, off, i);
            MemorySegment.copy(src, off + i, page, pageOff + d, nzrun);
            d += nzrun;
            i += nzrun;
        }
    }

    /** Runs {@code xbzrle_decode_buffer}'s checks without writing; throws at the first failure. */
    static void validate(MemorySegment src, long off, int len) throws MalformedPayloadException {
        if (len < 0 || len > PAGE) {
            throw new MalformedPayloadException("xbzrle delta of " + len + " bytes, at most " + PAGE + " allowed");
        }
        int i = 0;
        int d = 0;
        while (i < len) {
            if (len - i < 2) {
                throw new MalformedPayloadException("xbzrle delta truncated at byte " + i + ": run header expected");
            }
            int zrun = checkedUleb(src, off, i, len, "zero run");
            if (i != 0 && zrun == 0) {
                throw new MalformedPayloadException("xbzrle zero run of length 0 at byte " + i);
            }
            i += ulebSize(src, off, i);
            d += zrun;
            if (d > PAGE) {
                throw new MalformedPayloadException("xbzrle zero run at byte " + i + " overruns the page (to byte "
                        + d + ")");
            }
            if (len - i < 2) {
                throw new MalformedPayloadException("xbzrle delta truncated at byte " + i + ": changed run expected");
            }
            int nzrun = checkedUleb(src, off, i, len, "changed run");
            if (nzrun == 0) {
                throw new MalformedPayloadException("xbzrle changed run of length 0 at byte " + i);
            }
            i += ulebSize(src, off, i);
            if (d + nzrun > PAGE) {
                throw new MalformedPayloadException("xbzrle changed run at byte " + i + " overruns the page (to byte "
                        + (d + nzrun) + ")");
            }
            if (i + nzrun > len) {
                throw new MalformedPayloadException("xbzrle delta truncated at byte " + len + ": changed run of "
                        + nzrun + " bytes starting at byte " + i);
            }
            d += nzrun;
            i += nzrun;
        }
    }

    private static int checkedUleb(MemorySegment src, long off, int i, int len, String what)
            throws MalformedPayloadException {
        int b0 = Byte.toUnsignedInt(src.get(ValueLayout.JAVA_BYTE, off + i));
        if ((b0 & 0x80) == 0) {
            return b0;
        }
        int b1 = Byte.toUnsignedInt(src.get(ValueLayout.JAVA_BYTE, off + i + 1));
        if ((b1 & 0x80) != 0) {
            throw new MalformedPayloadException("xbzrle " + what + " length at byte " + i + " exceeds 14 bits");
        }
        return (b0 & 0x7f) | (b1 << 7);
    }

    private static int uleb(MemorySegment src, long off, int i) {
        int b0 = Byte.toUnsignedInt(src.get(ValueLayout.JAVA_BYTE, off + i));
        if ((b0 & 0x80) == 0) {
            return b0;
        }
        return (b0 & 0x7f) | (Byte.toUnsignedInt(src.get(ValueLayout.JAVA_BYTE, off + i + 1)) << 7);
    }

    private static int ulebSize(MemorySegment src, long off, int i) {
        return (src.get(ValueLayout.JAVA_BYTE, off + i) & 0x80) == 0 ? 1 : 2;
    }
}
