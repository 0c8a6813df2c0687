package dev.ferry.core;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A running {@link PageDigest} of a memory whose pages are replaced one at a time: the source
 * records each page as it sends it, the destination each page as it applies it. The per-page
 * hashes live off-heap (8 bytes per 4 KiB page) so that replacing a page is O(1).
 *
 * <p>Several threads record pages through {@link Part}s of their own, each keeping its own
 * running sum: a page is recorded by one thread at a time (its channel's, or the one that claimed
 * it), so the per-page slots need no lock. {@link #value()} adds the parts up; read it only after
 * the recording threads have handed over (a barrier, a join), which orders their writes first.
 */
public final class MemoryDigest implements AutoCloseable {
    private final GuestMemory slots;
    private final MemorySegment hashes;
    private final long pageCount;
    private final long base;
    private final java.util.List<Part> parts = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final Part own;

    /** A digest of {@code pageCount} pages, all zeros. */
    public MemoryDigest(long pageCount) {
        this.pageCount = pageCount;
        long bytes = pageCount * Long.BYTES;
        this.slots = GuestMemory.anonymous((bytes + GuestMemory.PAGE_SIZE - 1) & -GuestMemory.PAGE_SIZE);
        this.hashes = slots.unchecked();
        this.base = PageDigest.zeroMemory(pageCount);
        this.own = part();
    }

    /** A new recorder of pages for one thread. */
    public Part part() {
        Part part = new Part();
        parts.add(part);
        return part;
    }

    /** Records that page {@code index} now holds contents hashing to {@code contentHash} (this digest's own part). */
    public void update(long index, long contentHash) {
        own.update(index, contentHash);
    }

    /** Records that page {@code index} is now all zeros (this digest's own part). */
    public void updateZero(long index) {
        own.updateZero(index);
    }

    /** The digest of the memory as recorded by every part. */
    public long value() {
        long sum = base;
        for (Part part : parts) {
            sum += part.delta;
        }
        return sum;
    }

    /** One thread's recorder: its pages' changes to the digest. */
    public final class Part {
        private long delta;

        private Part() {
        }

        /** Records that page {@code index} now holds contents hashing to {@code contentHash}. */
        public void update(long index, long contentHash) {
            java.util.Objects.checkIndex(index, pageCount);
            long zero = PageDigest.pageHash(index, PageDigest.ZERO_CONTENT_HASH);
            long h = PageDigest.pageHash(index, contentHash);
            long slot = hashes.getAtIndex(ValueLayout.JAVA_LONG, index);
            if (slot != (h ^ zero)) {
                // an unchanged slot is not written: a zero page recorded as zero maps nothing in
                delta += h - (slot ^ zero);
                hashes.setAtIndex(ValueLayout.JAVA_LONG, index, h ^ zero);
            }
        }

        /** Records that page {@code index} is now all zeros. */
        public void updateZero(long index) {
            update(index, PageDigest.ZERO_CONTENT_HASH);
        }
    }

    /** Pages covered. */
    public long pageCount() {
        return pageCount;
    }

    @Override
    public void close() {
        slots.close();
    }
}
