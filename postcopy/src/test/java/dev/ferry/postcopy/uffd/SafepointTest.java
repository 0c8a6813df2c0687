package dev.ferry.postcopy.uffd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * JVM safepoints proceed while guest threads are blocked in userfaultfd faults, because
 * {@link GuestAccess} faults "in native". The surefire fork runs with
 * {@code -XX:GuaranteedSafepointInterval=1} and a fork timeout, since a real deadlock would also
 * stop the thread that enforces a JUnit timeout.
 *
 * <p>Why direct access would deadlock (deliberately not a test: its failure is a hung JVM). Had
 * the guest threads read with {@code memory.segment().get(JAVA_LONG, page << 12)}, each would
 * fault while in the "in Java" thread state. The kernel parks it in {@code handle_userfault}. The
 * next {@code System.gc()} (or any other safepoint operation) arms the safepoint and waits for
 * every thread "in Java" to reach a poll; the parked thread never will. A handler thread that was
 * in {@code poll(2)} returns to Java with the fault event and stops at the safepoint before it can
 * call {@code install}, so nothing ever wakes the guest thread: the VM thread, the GC caller, the
 * handler and the guest wait on one another for good. Whether that happens on a given run depends
 * on whether a safepoint falls inside a fault's window, which is why the bug would be rare in
 * production and why this test forces a safepoint into as many fault windows as it can.
 * Observed with a standalone copy of this test that read directly (2 guests x 200 pages, 10 ms
 * per fault): both runs hung and were killed after 30 s, with the VM thread in safepoint
 * synchronisation, the guest in the kernel's {@code handle_userfault} and the handler and GC
 * threads parked; without the {@code System.gc()} loop the same program finished in 4 s.
 */
class SafepointTest {
    @Test
    void garbageCollectionsCompleteWhileGuestsAreBlockedInDelayedFaults() throws Exception {
        int guests = 4;
        int perGuest = 50;
        AtomicLong gcsDuringAFault = new AtomicLong();
        AtomicLong faultsSpanningAGc = new AtomicLong();
        AtomicLong explicitGcs = new AtomicLong();
        try (GuestMemory memory = GuestMemory.anonymous(64L << 20); Arena arena = Arena.ofShared();
                MissingPageRegion region = MissingPageRegion.register(memory);
                FaultServer server = new FaultServer(region, 2, 1, page -> {
                    // The guest that faulted on page is blocked in the kernel for this whole window.
                    long before = collections();
                    sleepMillis(5 + ThreadLocalRandom.current().nextInt(16));
                    long completed = collections() - before;
                    if (completed > 0) {
                        faultsSpanningAGc.incrementAndGet();
                        gcsDuringAFault.addAndGet(completed);
                    }
                })) {
            GuestAccess access = new GuestAccess(memory);
            long start = System.nanoTime();
            Crew guestThreads = new Crew().start("guest", guests, g -> {
                MemorySegment got = arena.allocate(GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE);
                for (int n = 0; n < perGuest; n++) {
                    long page = (long) g * perGuest + n;
                    access.read(page, 0, got, 0, GuestMemory.PAGE_SIZE);
                    if (!PagePattern.matches(got, page, 1)) {
                        throw new AssertionError("page " + page + " has the wrong contents");
                    }
                }
            });
            Crew collector = new Crew().start("gc", 1, i -> {
                while (!guestThreads.done()) {
                    System.gc();
                    explicitGcs.incrementAndGet();
                }
            });
            guestThreads.join(60);
            collector.join(30);
            server.awaitSettled();
            assertEquals(guests * perGuest, server.installed.get());
            System.out.printf("safepoint test: %d faults in %d ms, %d System.gc() calls, %d faults spanned a GC"
                    + " (%d GCs completed while a guest was blocked)%n", server.faults.get(),
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start), explicitGcs.get(),
                    faultsSpanningAGc.get(), gcsDuringAFault.get());
            assertTrue(faultsSpanningAGc.get() >= guests * perGuest / 4,
                    "too few faults overlapped a GC to prove anything: " + faultsSpanningAGc.get());
        }
    }

    private static long collections() {
        long total = 0;
        for (GarbageCollectorMXBean bean : ManagementFactory.getGarbageCollectorMXBeans()) {
            total += Math.max(0, bean.getCollectionCount());
        }
        return total;
    }

    private static void sleepMillis(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
