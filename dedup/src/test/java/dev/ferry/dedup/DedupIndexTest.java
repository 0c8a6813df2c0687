package dev.ferry.dedup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

class DedupIndexTest {
    @Test
    void aContentSentOnceIsFoundAtItsPageAndRepointedWhenSentInFullElsewhere() {
        DedupIndex index = new DedupIndex(1 << 20);
        assertEquals(-1, index.lookup(12));
        index.put(12, DedupIndex.location(0, 7));
        assertEquals(DedupIndex.location(0, 7), index.lookup(12));
        assertEquals(-1, index.lookup(13));
        index.put(12, DedupIndex.location(3, 9));
        long at = index.lookup(12);
        assertEquals(3, DedupIndex.guestOf(at));
        assertEquals(9, DedupIndex.pageOf(at));
        assertEquals(2, index.hits());
        assertEquals(2, index.misses());
        assertEquals(1, index.entries(), "repointing takes no new entry");
    }

    @Test
    void theIndexIsBoundedAndCountsWhatItEvicts() {
        DedupIndex index = new DedupIndex(64 * DedupIndex.ENTRY_BYTES);
        assertEquals(64, index.capacity());
        assertTrue(index.bytes() <= 64 * DedupIndex.ENTRY_BYTES);
        for (long i = 0; i < 1000; i++) {
            index.put(i * 0x9E3779B97F4A7C15L, DedupIndex.location(0, i));
        }
        assertEquals(64, index.entries());
        assertEquals(1000 - 64, index.evictions());
        long found = 0;
        for (long i = 0; i < 1000; i++) {
            long at = index.lookup(i * 0x9E3779B97F4A7C15L);
            if (at >= 0) {
                assertEquals(i, DedupIndex.pageOf(at), "an entry names only the page its content was put at");
                found++;
            }
        }
        assertEquals(64, found);
    }

    /**
     * Pages whose two halves are equal (11% of the redis trace's non-zero pages) have content
     * hashes whose halves are equal too, so a bucket folded from the hash's two halves put them all
     * in one first bucket; they must spread over both choices like any others.
     */
    @Test
    void pagesWithEqualHalvesSpreadOverTheTable() {
        DedupIndex index = new DedupIndex(64L << 20);
        int contents = 200_000;
        long[] hashes = new long[contents];
        java.util.SplittableRandom random = new java.util.SplittableRandom(9);
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            java.lang.foreign.MemorySegment page = arena.allocate(dev.ferry.core.GuestMemory.PAGE_SIZE);
            int half = dev.ferry.core.GuestMemory.PAGE_SIZE / 2;
            for (int i = 0; i < contents; i++) {
                for (long off = 0; off < half; off += 8) {
                    page.set(java.lang.foreign.ValueLayout.JAVA_LONG, off, random.nextLong());
                }
                page.asSlice(half, half).copyFrom(page.asSlice(0, half));
                hashes[i] = dev.ferry.core.PageDigest.contentHash(page, 0);
                index.put(hashes[i], DedupIndex.location(1, i));
            }
        }
        assertEquals(0, index.evictions());
        // equal halves leave a content hash 32 bits of the page's: a few of 200 000 share one
        assertEquals(java.util.Arrays.stream(hashes).distinct().count(), index.entries());
        assertTrue(index.bytes() <= 16L << 20, "200k contents fit 1 M entries of two-choice buckets: " + index.bytes());
    }

    @Test
    void theTableStartsSmallAndDoublesWithoutLosingAnEntryUntilItsBound() {
        DedupIndex index = new DedupIndex(64L << 20);
        assertEquals(DedupIndex.INITIAL_BYTES, index.bytes(), "a 64 MiB index starts at 1 MiB");
        assertEquals((64L << 20) / DedupIndex.ENTRY_BYTES, index.capacity());
        int contents = 200_000;
        // content hashes look random; a multiplicative sequence's folded bits do not
        long[] hashes = new java.util.SplittableRandom(7).longs(contents).toArray();
        for (int i = 0; i < contents; i++) {
            index.put(hashes[i], DedupIndex.location(1, i));
        }
        assertEquals(0, index.evictions(), "below its bound a full bucket doubles the table instead");
        assertEquals(contents, index.entries());
        assertTrue(index.bytes() > DedupIndex.INITIAL_BYTES && index.bytes() <= 64L << 20, "grew to " + index.bytes());
        assertTrue(index.bytes() <= 16L << 20, "200k contents fit 1 M entries of two-choice buckets: " + index.bytes());
        for (int i = 0; i < contents; i++) {
            long at = index.lookup(hashes[i]);
            assertEquals(DedupIndex.location(1, i), at, "content " + i + " survives every doubling at its page");
        }
        assertEquals(contents, index.hits());
    }

    @Test
    void equalPagesHashEquallyAndAByteChangesTheHash() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pages = arena.allocate(3L * GuestMemory.PAGE_SIZE, 64);
            for (long i = 0; i < GuestMemory.PAGE_SIZE; i++) {
                byte b = (byte) (i * 31 + 7);
                pages.set(ValueLayout.JAVA_BYTE, i, b);
                pages.set(ValueLayout.JAVA_BYTE, GuestMemory.PAGE_SIZE + i, b);
                pages.set(ValueLayout.JAVA_BYTE, 2L * GuestMemory.PAGE_SIZE + i, b);
            }
            pages.set(ValueLayout.JAVA_BYTE, 3L * GuestMemory.PAGE_SIZE - 1, (byte) 0);
            ContentHash hash = new ContentHash();
            hash.hash(pages, 0);
            long high = hash.high();
            long low = hash.low();
            hash.hash(pages, GuestMemory.PAGE_SIZE);
            assertEquals(high, hash.high());
            assertEquals(low, hash.low());
            hash.hash(pages, 2L * GuestMemory.PAGE_SIZE);
            assertNotEquals(high ^ low, hash.high() ^ hash.low(), "the last byte differs");
        }
    }
}
