package dev.ferry.compression;

import dev.ferry.core.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The source's copies of pages as last sent, against which {@link Xbzrle} deltas are taken.
 *
 * <p>Direct-mapped by page index like QEMU's {@code page_cache.c}: slot {@code index & (slots - 1)}
 * holds at most one page, tagged with its index; inserting another page that maps to the slot
 * evicts it. The slot count is the largest power of two whose pages fit in the configured size,
 * and all slots are one anonymous mapping made up front, which the kernel backs page by page as
 * slots are first filled: zeroing 64 MiB at once would cost a migration's setup tens of
 * milliseconds, and a short migration never fills most of it.
 *
 * <p>Single-threaded: the {@link PageEncoder} that owns it is the only user.
 */
public final class XbzrleCache implements AutoCloseable {
    private static final int PAGE = GuestMemory.PAGE_SIZE;
    private static final long EMPTY = -1;

    private final GuestMemory slotMemory;
    private final MemorySegment pages;
    private final long[] tags;
    private final int mask;
    private long hits;
    private long misses;
    private long overflows;
    private long evictions;

    /** A cache of at most {@code sizeBytes} bytes of pages (at least one page). */
    public XbzrleCache(long sizeBytes) {
        long wanted = Math.max(1, Math.min(sizeBytes / PAGE, 1L << 30));
        int slots = (int) Long.highestOneBit(wanted);
        this.slotMemory = GuestMemory.anonymous((long) slots * PAGE);
        this.pages = slotMemory.segment();
        this.tags = new long[slots];
        this.mask = slots - 1;
        Arrays.fill(tags, EMPTY);
    }

    /** Pages the cache holds at most. */
    public int slots() {
        return tags.length;
    }

    /** The segment holding every slot; a {@link #lookup} offset points into it. */
    public MemorySegment segment() {
        return pages;
    }

    /** The offset in {@link #segment()} of page {@code index} as last sent, or -1 (counted as hit or miss). */
    public long lookup(long index) {
        int slot = (int) index & mask;
        if (tags[slot] == index) {
            hits++;
            return (long) slot * PAGE;
        }
        misses++;
        return -1;
    }

    /** Where page {@code index} is cached, as {@link #lookup} says, or -1; counts nothing. */
    public long peek(long index) {
        int slot = (int) index & mask;
        return tags[slot] == index ? (long) slot * PAGE : -1;
    }

    /** Stores page {@code index} as sent, from {@code page[pageOff..]}, evicting whatever shared its slot. */
    public void insert(long index, MemorySegment page, long pageOff) {
        int slot = (int) index & mask;
        long tag = tags[slot];
        if (tag != index && tag != EMPTY) {
            evictions++;
        }
        tags[slot] = index;
        MemorySegment.copy(page, pageOff, pages, (long) slot * PAGE, PAGE);
    }

    /** Forgets page {@code index} if held, e.g. because it was sent in a form not worth caching. */
    public void invalidate(long index) {
        int slot = (int) index & mask;
        if (tags[slot] == index) {
            tags[slot] = EMPTY;
        }
    }

    /** Counts a delta that did not fit its budget, so the page went another way. */
    void overflowed() {
        overflows++;
    }

    public long hits() {
        return hits;
    }

    public long misses() {
        return misses;
    }

    public long overflows() {
        return overflows;
    }

    public long evictions() {
        return evictions;
    }

    @Override
    public void close() {
        slotMemory.close();
    }
}
