package dev.ferry.protocol;

import dev.ferry.core.Capability;
import java.util.Set;

/**
 * The wire codes of a page payload; part of the protocol, so values never change. Every
 * payload restores exactly 4096 bytes of one page.
 *
 * <pre>
 * code  name         payload
 *  0    raw          the 4096 page bytes
 *  1    zero         empty; the page is all zeros
 *  2    xbzrle       an {@link Xbzrle} delta (0..4096 bytes) against the page the destination
 *                    holds, i.e. the copy the source last sent; empty means unchanged
 *  3    lz4          one LZ4 block (no frame) that decompresses to exactly 4096 bytes
 *  4    zstd         one zstd frame, magicless (ZSTD_f_zstd1_magicless), content size present,
 *                    no checksum, decompressing to exactly 4096 bytes
 *  5    xbzrle+lz4   u16 LE delta length n (1..4096), then an LZ4 block decompressing to exactly
 *                    n bytes of xbzrle delta
 *  6    xbzrle+zstd  u16 LE delta length n (1..4096), then a zstd frame (as for code 4)
 *                    decompressing to exactly n bytes of xbzrle delta
 *  7    dedup        a reference, {@link PageRecords#REFERENCE_BYTES} bytes: guest u16, page u64,
 *                    XXH3-128 u128 (high half first), all big-endian: the page's content is the
 *                    one the destination holds at that guest's page, if that copy still hashes so
 *                    (docs/protocol.md, Dedup references)
 * </pre>
 */
public final class PageEncoding {
    public static final int RAW = 0;
    public static final int ZERO = 1;
    public static final int XBZRLE = 2;
    public static final int LZ4 = 3;
    public static final int ZSTD = 4;
    public static final int XBZRLE_LZ4 = 5;
    public static final int XBZRLE_ZSTD = 6;
    public static final int DEDUP = 7;
    /** Number of codes; codes are {@code 0 .. COUNT - 1}. */
    public static final int COUNT = 8;

    private static final String[] NAMES = {"raw", "zero", "xbzrle", "lz4", "zstd", "xbzrle+lz4", "xbzrle+zstd",
        "dedup"};

    private PageEncoding() {
    }

    /**
     * The codes the capabilities in {@code accepted} allow, as a mask of {@code 1 << code}: RAW
     * always, every other code only with the capabilities that produce it.
     */
    public static int allowedBy(Set<Capability> accepted) {
        boolean xbzrle = accepted.contains(Capability.XBZRLE);
        boolean lz4 = accepted.contains(Capability.LZ4);
        boolean zstd = accepted.contains(Capability.ZSTD);
        int mask = 1 << RAW;
        mask |= accepted.contains(Capability.ZERO_PAGES) ? 1 << ZERO : 0;
        mask |= xbzrle ? 1 << XBZRLE : 0;
        mask |= lz4 ? 1 << LZ4 : 0;
        mask |= zstd ? 1 << ZSTD : 0;
        mask |= xbzrle && lz4 ? 1 << XBZRLE_LZ4 : 0;
        mask |= xbzrle && zstd ? 1 << XBZRLE_ZSTD : 0;
        mask |= accepted.contains(Capability.DEDUP) ? 1 << DEDUP : 0;
        return mask;
    }

    /** The report name of {@code code}, or {@code "unknown(N)"}. */
    public static String name(int code) {
        return code >= 0 && code < COUNT ? NAMES[code] : "unknown(" + code + ")";
    }
}
