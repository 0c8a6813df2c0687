package dev.ferry.core;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A running {@link PageDigest} of a memory whose pages are replaced one at a time: the source
 * records each page as it sends it, the destination each page as it applies it. The per-page
 * hashes live off-heap (8 bytes per 4 KiB page) so that replacing a page is O(1).
 */
public final class MemoryDigest implements AutoCloseable {
    private final Arena arena = Arena.ofShared();
    private final MemorySegment hashes;
    private final long pageCount;
    private long sum;

    /** A digest of {@code pageCount} pages, all zeros. */
    public MemoryDigest(long pageCount) {
        this.pageCount = pageCount;
        this.hashes = arena.allocate(pageCount * Long.BYTES, Long.BYTES);
        long s = 0;
        for (long i = 0; i < pageCount; i++) {
            long h = PageDigest.pageHash(i, PageDigest.ZERO_CONTENT_HASH);
            hashes.setAtIndex(ValueLayout.JAVA_LONG, i, h);
            s += h;
        }
        this.sum = s;
    }

    /** Records that page {@code index} now holds contents hashing to {@code contentHash}. */
    public void update(long index, long contentHash) {
        long h = PageDigest.pageHash(index, contentHash);
        sum += h - hashes.getAtIndex(ValueLayout.JAVA_LONG, index);
        hashes.setAtIndex(ValueLayout.JAVA_LONG, index, h);
    }

    /** Records that page {@code index} is now all zeros. */
    public void updateZero(long index) {
        update(index, PageDigest.ZERO_CONTENT_HASH);
    }

    /** The digest of the memory as recorded. */
    public long value() {
        return sum;
    }

    /** Pages covered. */
    public long pageCount() {
        return pageCount;
    }

    @Override
    public void close() {
        arena.close();
    }
}
