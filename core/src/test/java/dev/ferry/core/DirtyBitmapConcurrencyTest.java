package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The migration's central promise: a page written while rounds run is sent again after its last
 * write. Writers store into pages and then mark them, the way vCPUs and KVM do, while a "migration"
 * thread syncs and copies what it got into a shadow. Once writers stop, one more sync and copy
 * must leave the shadow equal to the memory byte for byte; a mark lost between a sync's swap and a
 * write would leave a stale page behind.
 */
class DirtyBitmapConcurrencyTest {
    /** Few pages, so writers collide on words and pages constantly. */
    private static final long PAGES = 512;
    private static final int WRITERS = 3;
    private static final int WRITES_PER_WRITER = 1_000_000;

    @Test
    @Timeout(60)
    void noDirtyPageIsLostBetweenRounds() throws InterruptedException {
        try (GuestMemory memory = GuestMemory.anonymous(PAGES * GuestMemory.PAGE_SIZE);
                GuestMemory shadow = GuestMemory.anonymous(PAGES * GuestMemory.PAGE_SIZE)) {
            DirtyBitmap dirty = new DirtyBitmap(PAGES);
            AtomicLong sequence = new AtomicLong();
            List<Thread> writers = new ArrayList<>();
            for (int w = 0; w < WRITERS; w++) {
                long seed = w;
                writers.add(Thread.ofPlatform().name("vcpu-" + w).start(() -> write(memory, dirty, sequence, seed)));
            }

            PageBitmap round = new PageBitmap(PAGES);
            long rounds = 0;
            long copied = 0;
            while (writers.stream().anyMatch(Thread::isAlive)) {
                dirty.sync(round);
                copied += copy(round, memory, shadow);
                rounds++;
            }
            for (Thread t : writers) {
                t.join();
            }
            dirty.sync(round);
            copied += copy(round, memory, shadow);

            long differs = memory.segment().mismatch(shadow.segment());
            assertEquals(-1, differs, () -> "page " + (differs >>> GuestMemory.PAGE_SHIFT) + " is stale in the shadow");
            assertTrue(rounds > 1 && copied > PAGES, "rounds=" + rounds + " copied=" + copied + ": sync never overlapped the writes");
        }
    }

    /** Each write stores a fresh sequence number in the page's first word and in one random word, then marks. */
    private static void write(GuestMemory memory, DirtyBitmap dirty, AtomicLong sequence, long seed) {
        MemorySegment segment = memory.segment();
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < WRITES_PER_WRITER; i++) {
            long page = random.nextLong(PAGES);
            long seq = sequence.incrementAndGet();
            long base = page << GuestMemory.PAGE_SHIFT;
            segment.set(ValueLayout.JAVA_LONG, base, seq);
            segment.set(ValueLayout.JAVA_LONG, base + 8L * (1 + random.nextInt(511)), seq);
            dirty.mark(page);
        }
    }

    /** "Sends" the round's pages: copies each into the shadow and takes it out of the round. */
    private static long copy(PageBitmap round, GuestMemory from, GuestMemory to) {
        long n = 0;
        for (long page = round.nextSetBit(0); page >= 0; page = round.nextSetBit(page + 1)) {
            round.clear(page);
            long offset = page << GuestMemory.PAGE_SHIFT;
            MemorySegment.copy(from.segment(), offset, to.segment(), offset, GuestMemory.PAGE_SIZE);
            n++;
        }
        assertTrue(round.isEmpty());
        return n;
    }
}
