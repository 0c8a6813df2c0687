package dev.ferry.qemu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.GuestMemory;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** The scanning dirty log on real memory: a page is dirty exactly when it differs from the copy last sent. */
class ContentHashLogTest {
    private static final int PAGES = 64;

    @Test
    void everyPageButZerosIsDirtyUntilSentThenOnlyWhatChanged() {
        try (GuestMemory memory = GuestMemory.anonymous((long) PAGES * GuestMemory.PAGE_SIZE);
                ContentHashLog log = new ContentHashLog(memory, NanoClock.SYSTEM); Arena arena = Arena.ofConfined()) {
            memory.segment().set(ValueLayout.JAVA_BYTE, 5L * GuestMemory.PAGE_SIZE, (byte) 1);
            PageBitmap dirty = new PageBitmap(PAGES);
            assertEquals(1, log.sync(dirty), "never sent: every page but those of zeros, which a fresh destination has");
            assertTrue(dirty.get(5));
            MemorySegment frame = arena.allocate(GuestMemory.PAGE_SIZE);
            for (long page = 0; page < PAGES; page++) {
                memory.readPage(page, frame, 0);
                log.sending(page, frame, 0);
            }
            dirty.clearAll();
            assertEquals(0, log.sync(dirty), "every page as sent");
            memory.segment().set(ValueLayout.JAVA_BYTE, 9L * GuestMemory.PAGE_SIZE + 4095, (byte) 7);
            assertEquals(1, log.sync(dirty));
            assertTrue(dirty.get(9));
            assertEquals(0, log.sync(dirty), "already in the bitmap: nothing added, the page still differs");
            assertTrue(dirty.get(9));
        }
    }

    /**
     * Four threads scan 64 k dirty pages at once: the bitmap's count must be the pages it holds.
     * Each thread setting its pages into the one bitmap lost counts (the threads write disjoint
     * words, but the count is one field); with dedup, the stop-and-copy's check that no stale
     * page was left then saw a count of -67 with no page set, and failed a QEMU migration.
     */
    @Test
    void aScanOnManyThreadsCountsEveryPageItSets() {
        long pages = 65_536;
        try (GuestMemory memory = GuestMemory.anonymous(pages * GuestMemory.PAGE_SIZE);
                ContentHashLog log = new ContentHashLog(memory, NanoClock.SYSTEM, 4)) {
            for (long page = 0; page < pages; page++) {
                memory.segment().set(ValueLayout.JAVA_BYTE, page * GuestMemory.PAGE_SIZE + page % 4096, (byte) 1);
            }
            PageBitmap dirty = new PageBitmap(pages);
            assertEquals(pages, log.sync(dirty));
            long held = 0;
            for (long p = dirty.nextSetBit(0); p >= 0; p = dirty.nextSetBit(p + 1)) {
                held++;
            }
            assertEquals(pages, held);
            assertEquals(pages, dirty.cardinality(), "the count is the pages set");
        }
    }

    /**
     * A page that changed after the scan, was sent in its new content, then changed back: the
     * destination holds the new content, so the page is dirty although it equals what the scan saw.
     */
    @Test
    void aPageChangedBackAfterItsSendIsDirty() {
        try (GuestMemory memory = GuestMemory.anonymous((long) PAGES * GuestMemory.PAGE_SIZE);
                ContentHashLog log = new ContentHashLog(memory, NanoClock.SYSTEM); Arena arena = Arena.ofConfined()) {
            MemorySegment frame = arena.allocate(GuestMemory.PAGE_SIZE);
            for (long page = 0; page < PAGES; page++) {
                memory.readPage(page, frame, 0);
                log.sending(page, frame, 0);
            }
            long at = 3L * GuestMemory.PAGE_SIZE;
            memory.segment().set(ValueLayout.JAVA_BYTE, at, (byte) 1);
            PageBitmap dirty = new PageBitmap(PAGES);
            assertEquals(1, log.sync(dirty));
            memory.segment().set(ValueLayout.JAVA_BYTE, at, (byte) 2);
            memory.readPage(3, frame, 0);
            log.sending(3, frame, 0);
            memory.segment().set(ValueLayout.JAVA_BYTE, at, (byte) 1);
            dirty.clearAll();
            assertEquals(1, log.sync(dirty), "sent as 2, now 1 again: the destination is stale");
            assertTrue(dirty.get(3));
            assertFalse(dirty.get(2));
        }
    }

    /** Scanned on three threads, chunk by chunk: the same pages, each counted once. */
    @Test
    void threadsFindExactlyTheChangedPages() {
        long pages = 3 * 4096 + 100;
        try (GuestMemory memory = GuestMemory.anonymous(pages * GuestMemory.PAGE_SIZE);
                ContentHashLog log = new ContentHashLog(memory, NanoClock.SYSTEM, 3); Arena arena = Arena.ofConfined()) {
            MemorySegment frame = arena.allocate(GuestMemory.PAGE_SIZE);
            for (long page = 0; page < pages; page++) {
                memory.readPage(page, frame, 0);
                log.sending(page, frame, 0);
            }
            PageBitmap expected = new PageBitmap(pages);
            for (long page = 7; page < pages; page += 997) {
                memory.segment().set(ValueLayout.JAVA_BYTE, page * GuestMemory.PAGE_SIZE + page % 4096, (byte) 1);
                expected.set(page);
            }
            PageBitmap dirty = new PageBitmap(pages);
            assertEquals(expected.cardinality(), log.sync(dirty));
            for (long page = 0; page < pages; page++) {
                assertEquals(expected.get(page), dirty.get(page), "page " + page);
            }
        }
    }
}
