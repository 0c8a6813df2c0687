package dev.ferry.postcopy.uffd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Real faults on a registered 64 MiB guest: every guest access runs on its own platform thread
 * through {@link GuestAccess} and is joined within a bound, so a missed wake-up fails the test.
 */
class MissingPageRegionTest {
    private static final long GUEST_BYTES = 64L << 20;
    private static final int PAGE = GuestMemory.PAGE_SIZE;
    private static final long WAIT = TimeUnit.SECONDS.toNanos(10);

    @AfterEach
    void batchedDiscardsAgain() {
        MissingPageRegion.batchedDiscards(true);
    }

    @Test
    void aReadOfADiscardedPageBlocksUntilTheHandlerInstallsIt() throws Exception {
        try (GuestMemory memory = GuestMemory.anonymous(GUEST_BYTES); Arena arena = Arena.ofShared()) {
            // Not registered yet, so plain Java stores are safe.
            for (long page = 0; page < 16; page++) {
                PagePattern.fill(memory.segment().asSlice(page * PAGE, PAGE), page, 0);
            }
            try (MissingPageRegion region = MissingPageRegion.register(memory)) {
                GuestAccess access = new GuestAccess(memory);
                MemorySegment got = arena.allocate(PAGE, PAGE);
                MemorySegment src = arena.allocate(PAGE, PAGE);
                region.discard(3);
                region.discard(7);
                region.discard(12);
                assertEquals(MissingPageRegion.NO_FAULT, region.awaitFault(0));

                new Crew().start("present", 1, i -> access.read(5, 0, got, 0, PAGE)).join(10);
                assertTrue(PagePattern.matches(got, 5, 0), "a written page that was not discarded stays present");
                assertEquals(MissingPageRegion.NO_FAULT, region.awaitFault(0), "reading a present page faulted");

                Crew reader = new Crew().start("reader", 1, i -> access.read(7, 0, got, 0, PAGE));
                assertEquals(7, region.awaitFault(WAIT));
                Thread.sleep(50);
                assertFalse(reader.done(), "the reader returned before its page was installed");
                PagePattern.fill(src, 7, 1);
                assertTrue(region.install(7, src, 0));
                reader.join(10);
                assertTrue(PagePattern.matches(got, 7, 1), "the reader sees exactly the installed bytes");

                // A store faults the same way and lands on top of the installed page.
                MemorySegment store = arena.allocate(16);
                store.fill((byte) 0x5A);
                Crew writer = new Crew().start("writer", 1, i -> access.write(3, 1000, store, 0, 16));
                assertEquals(3, region.awaitFault(WAIT));
                PagePattern.fill(src, 3, 1);
                assertTrue(region.install(3, src, 0));
                writer.join(10);
                new Crew().start("check", 1, i -> access.read(3, 0, got, 0, PAGE)).join(10);
                MemorySegment expected = arena.allocate(PAGE, PAGE);
                PagePattern.fill(expected, 3, 1);
                expected.asSlice(1000, 16).fill((byte) 0x5A);
                assertEquals(-1, got.mismatch(expected));

                long[] latencies = sequentialFaultLatencies(region, access, arena, 12, 16, 4096);
                System.out.println("uffd uncontended fault latency over " + latencies.length + " faults: "
                        + percentiles(latencies));
            }
        }
    }

    /**
     * Times one guest thread reading page {@code first} (missing), then fresh pages after
     * {@code from}, served by one handler thread; closes the region when done.
     */
    private static long[] sequentialFaultLatencies(MissingPageRegion region, GuestAccess access, Arena arena,
            long first, long from, int count) throws Exception {
        long[] latencies = new long[count];
        MemorySegment got = arena.allocate(PAGE, PAGE);
        try (FaultServer server = new FaultServer(region, 1, 2, page -> { })) {
            new Crew().start("sequential", 1, i -> {
                for (int n = 0; n < count; n++) {
                    long page = n == 0 ? first : from + n;
                    long start = System.nanoTime();
                    access.read(page, 0, got, 0, PAGE);
                    latencies[n] = System.nanoTime() - start;
                    if (!PagePattern.matches(got, page, 2)) {
                        throw new AssertionError("page " + page + " has the wrong contents");
                    }
                }
            }).join(60);
            server.awaitSettled();
            assertEquals(count, server.installed.get());
        }
        return latencies;
    }

    @Test
    void manyConcurrentFaultsAreAllServedWithTheirOwnContents() throws Exception {
        int guests = 4;
        int perGuest = 2000;
        try (GuestMemory memory = GuestMemory.anonymous(GUEST_BYTES); Arena arena = Arena.ofShared();
                MissingPageRegion region = MissingPageRegion.register(memory);
                FaultServer server = new FaultServer(region, 2, 1, page -> { })) {
            GuestAccess access = new GuestAccess(memory);
            long[] pages = shuffledPages(memory.pageCount(), new Random(42));
            long[][] latencies = new long[guests][perGuest];
            new Crew().start("guest", guests, g -> {
                MemorySegment got = arena.allocate(PAGE, PAGE);
                for (int n = 0; n < perGuest; n++) {
                    long page = pages[g * perGuest + n];
                    long start = System.nanoTime();
                    access.read(page, 0, got, 0, PAGE);
                    latencies[g][n] = System.nanoTime() - start;
                    if (!PagePattern.matches(got, page, 1)) {
                        throw new AssertionError("page " + page + " has the wrong contents");
                    }
                }
            }).join(120);
            server.awaitSettled();
            assertEquals(guests * perGuest, server.installed.get(), "one install per missing page");
            assertEquals(server.faults.get(), server.installed.get() + server.alreadyPresent.get());
            System.out.println("uffd fault latency, " + guests + " guests x " + perGuest + " pages, 2 handlers: "
                    + percentiles(Arrays.stream(latencies).flatMapToLong(Arrays::stream).toArray()));

            AtomicLong wrong = new AtomicLong();
            new Crew().start("verify", 1, i -> {
                MemorySegment got = arena.allocate(PAGE, PAGE);
                for (int n = 0; n < guests * perGuest; n++) {
                    access.read(pages[n], 0, got, 0, PAGE);
                    if (!PagePattern.matches(got, pages[n], 1)) {
                        wrong.incrementAndGet();
                    }
                }
            }).join(60);
            assertEquals(0, wrong.get(), "pages without their installed contents");
            assertEquals(guests * perGuest, server.installed.get(), "reading present pages faulted");

            long present = pages[0];
            MemorySegment other = arena.allocate(PAGE, PAGE);
            PagePattern.fill(other, present, 99);
            assertFalse(region.install(present, other, 0), "install over a present page");
            assertFalse(region.installZero(present), "zero-page over a present page");
            MemorySegment got = arena.allocate(PAGE, PAGE);
            new Crew().start("recheck", 1, i -> access.read(present, 0, got, 0, PAGE)).join(10);
            assertTrue(PagePattern.matches(got, present, 1), "a present page keeps its contents");

            // Guests racing on one missing page: all see it, and it is installed once.
            long contended = pages[guests * perGuest];
            CyclicBarrier start = new CyclicBarrier(guests);
            AtomicReference<String> mismatch = new AtomicReference<>();
            long installedBefore = server.installed.get();
            new Crew().start("contend", guests, g -> {
                MemorySegment mine = arena.allocate(PAGE, PAGE);
                start.await(10, TimeUnit.SECONDS);
                access.read(contended, 0, mine, 0, PAGE);
                if (!PagePattern.matches(mine, contended, 1)) {
                    mismatch.set("guest " + g);
                }
            }).join(10);
            server.awaitSettled();
            assertEquals(null, mismatch.get());
            assertEquals(installedBefore + 1, server.installed.get());
        }
    }

    @Test
    void aDiscardedPageFaultsAgainAndTakesNewContents() throws Exception {
        try (GuestMemory memory = GuestMemory.anonymous(GUEST_BYTES); Arena arena = Arena.ofShared();
                MissingPageRegion region = MissingPageRegion.register(memory)) {
            GuestAccess access = new GuestAccess(memory);
            MemorySegment src = arena.allocate(PAGE, PAGE);
            MemorySegment got = arena.allocate(PAGE, PAGE);
            long page = 42;
            for (long generation = 1; generation <= 3; generation++) {
                if (generation > 1) {
                    region.discard(page);
                }
                Crew reader = new Crew().start("reader", 1, i -> access.read(page, 0, got, 0, PAGE));
                assertEquals(page, region.awaitFault(WAIT), "generation " + generation);
                PagePattern.fill(src, page, generation);
                assertTrue(region.install(page, src, 0));
                reader.join(10);
                assertTrue(PagePattern.matches(got, page, generation), "generation " + generation);
            }

            region.discard(page);
            Crew reader = new Crew().start("reader", 1, i -> access.read(page, 0, got, 0, PAGE));
            assertEquals(page, region.awaitFault(WAIT));
            assertTrue(region.installZero(page));
            reader.join(10);
            assertEquals(-1, got.mismatch(arena.allocate(PAGE)), "a zero page reads as zeros");
            assertFalse(region.installZero(page));
            assertEquals(MissingPageRegion.NO_FAULT, region.awaitFault(0));
        }
    }

    /**
     * A switch-over's discard: thousands of scattered runs, several batches' worth and a partial
     * one, drop exactly their pages. Each page is then installed as zeros, which succeeds only
     * where the page is missing, and the kept pages still hold their bytes.
     */
    @ParameterizedTest(name = "process_madvise {0}")
    @ValueSource(booleans = {true, false})
    void aBatchOfDiscardsDropsExactlyItsRunsAndKeepsTheRest(boolean batched) throws Exception {
        MissingPageRegion.batchedDiscards(batched);
        try (GuestMemory memory = GuestMemory.anonymous(GUEST_BYTES); Arena arena = Arena.ofShared()) {
            long pages = memory.pageCount();
            for (long page = 0; page < pages; page++) {
                PagePattern.fill(memory.segment().asSlice(page * PAGE, PAGE), page, 0);
            }
            boolean[] dropped = new boolean[(int) pages];
            int runs = 0;
            try (MissingPageRegion region = MissingPageRegion.register(memory)) {
                try (MissingPageRegion.Discards discards = region.discards()) {
                    Random random = new Random(7);
                    for (long page = random.nextInt(3); page < pages; ) {
                        long length = Math.min(pages - page, 1 + random.nextInt(3));
                        discards.add(page, length);
                        Arrays.fill(dropped, (int) page, (int) (page + length), true);
                        runs++;
                        page += length + 1 + random.nextInt(2);
                    }
                }
                assertTrue(runs > 2 * 1024 && runs % 1024 != 0, runs + " runs: more than two full batches and a partial one");
                for (long page = 0; page < pages; page++) {
                    assertEquals(dropped[(int) page], region.installZero(page), "page " + page + " missing");
                }
                assertEquals(MissingPageRegion.NO_FAULT, region.awaitFault(0));
                GuestAccess access = new GuestAccess(memory);
                MemorySegment got = arena.allocate(memory.byteSize(), PAGE);
                new Crew().start("reader", 1, i -> {
                    for (long page = 0; page < pages; page++) {
                        access.read(page, 0, got, page * PAGE, PAGE);
                    }
                }).join(10);
                MemorySegment zeros = arena.allocate(PAGE, PAGE);
                for (long page = 0; page < pages; page++) {
                    MemorySegment read = got.asSlice(page * PAGE, PAGE);
                    assertTrue(dropped[(int) page] ? read.mismatch(zeros) == -1 : PagePattern.matches(read, page, 0),
                            "page " + page + (dropped[(int) page] ? " reads as the zeros installed" : " kept its bytes"));
                }
            }
        }
    }

    @Test
    void closeEndsHandlersAndReleasesBlockedGuests() throws Exception {
        try (GuestMemory memory = GuestMemory.anonymous(GUEST_BYTES); Arena arena = Arena.ofShared()) {
            GuestAccess access = new GuestAccess(memory);
            MemorySegment got = arena.allocate(PAGE, PAGE);
            got.fill((byte) 1);
            MissingPageRegion region = MissingPageRegion.register(memory);
            try {
                Crew reader = new Crew().start("reader", 1, i -> access.read(9, 0, got, 0, PAGE));
                assertEquals(9, region.awaitFault(WAIT));
                AtomicLong result = new AtomicLong();
                Crew handler = new Crew().start("handler", 1, i -> result.set(region.awaitFault(TimeUnit.MINUTES.toNanos(1))));
                Thread.sleep(50);
                assertFalse(handler.done());
                region.close();
                handler.join(10);
                assertEquals(MissingPageRegion.CLOSED, result.get());
                reader.join(10);
                assertEquals(-1, got.mismatch(arena.allocate(PAGE)), "unregistered, the missing page reads as zeros");
                assertEquals(MissingPageRegion.CLOSED, region.awaitFault(0));
                assertThrows(IllegalStateException.class, () -> region.install(9, got, 0));
            } finally {
                region.close();
            }
        }
    }

    @Test
    void guestAccessRejectsHeapMemory() {
        try (GuestMemory memory = GuestMemory.anonymous(GUEST_BYTES); Arena arena = Arena.ofConfined()) {
            GuestAccess access = new GuestAccess(memory);
            MemorySegment heap = MemorySegment.ofArray(new byte[PAGE]);
            MemorySegment buffer = arena.allocate(PAGE);
            assertThrows(IllegalArgumentException.class, () -> access.read(0, 0, heap, 0, PAGE));
            assertThrows(IndexOutOfBoundsException.class, () -> access.read(memory.pageCount(), 0, buffer, 0, PAGE));
            assertThrows(IndexOutOfBoundsException.class, () -> access.write(0, PAGE, buffer, 0, 1));
        }
    }

    private static long[] shuffledPages(long count, Random random) {
        long[] pages = new long[(int) count];
        for (int i = 0; i < pages.length; i++) {
            pages[i] = i;
        }
        for (int i = pages.length - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            long swap = pages[i];
            pages[i] = pages[j];
            pages[j] = swap;
        }
        return pages;
    }

    static String percentiles(long[] nanos) {
        long[] sorted = nanos.clone();
        Arrays.sort(sorted);
        return String.format("p50 %.1f us, p99 %.1f us, max %.1f us",
                sorted[sorted.length / 2] / 1e3, sorted[(int) (sorted.length * 0.99)] / 1e3,
                sorted[sorted.length - 1] / 1e3);
    }
}
