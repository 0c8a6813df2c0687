package dev.ferry.core;

import java.lang.foreign.MemorySegment;
import net.openhft.hashing.LongHashFunction;

/**
 * The hash of one page and the order-independent digest of a whole memory built from it.
 *
 * <p>{@code pageHash(i) = fmix64(xxh3(page i) ^ (i * golden))}; the memory digest is the
 * wrapping sum of every page's hash. A sum does not care in which order pages arrive (post-copy
 * delivers them out of order), binds each content to its index (moving a page changes the
 * digest), and updates in O(1) when a page is replaced, so neither side needs a full scan during
 * the downtime.
 */
public final class PageDigest {
    private static final LongHashFunction XXH3 = LongHashFunction.xx3();
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;
    /** xxh3 of a page of zeros. */
    public static final long ZERO_CONTENT_HASH = XXH3.hashBytes(new byte[GuestMemory.PAGE_SIZE]);

    private PageDigest() {
    }

    /** xxh3 of the page that starts at {@code offset} of a native segment. */
    public static long contentHash(MemorySegment segment, long offset) {
        // by address, not through a slice: this runs once per page on both sides
        java.util.Objects.checkFromIndexSize(offset, GuestMemory.PAGE_SIZE, segment.byteSize());
        if (!segment.isNative()) {
            throw new IllegalArgumentException("page hashing needs a native segment");
        }
        return XXH3.hashMemory(segment.address() + offset, GuestMemory.PAGE_SIZE);
    }

    /** xxh3 of {@code length} bytes at a native address. */
    public static long contentHash(long address, int length) {
        return XXH3.hashMemory(address, length);
    }

    /** The hash of page {@code index} whose contents hash to {@code contentHash}. */
    public static long pageHash(long index, long contentHash) {
        long h = contentHash ^ (index * GOLDEN);
        h = (h ^ (h >>> 33)) * 0xff51afd7ed558ccdL;
        h = (h ^ (h >>> 33)) * 0xc4ceb9fe1a85ec53L;
        return h ^ (h >>> 33);
    }

    /** The digest of a memory of {@code pageCount} zero pages. */
    public static long zeroMemory(long pageCount) {
        long sum = 0;
        for (long i = 0; i < pageCount; i++) {
            sum += pageHash(i, ZERO_CONTENT_HASH);
        }
        return sum;
    }

    /** The digest of {@code memory} as it is now, read page by page (a full scan). */
    public static long scan(GuestMemory memory) {
        MemorySegment segment = memory.segment();
        long base = segment.address();
        long sum = 0;
        for (long i = 0, n = memory.pageCount(); i < n; i++) {
            sum += pageHash(i, XXH3.hashMemory(base + (i << GuestMemory.PAGE_SHIFT), GuestMemory.PAGE_SIZE));
        }
        return sum;
    }
}
