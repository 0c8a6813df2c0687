package dev.ferry.postcopy.uffd;

import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.ferry.core.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongConsumer;

/**
 * Fault-handling threads, as the post-copy destination would run them: each waits for a fault,
 * runs {@code beforeInstall} (where a test delays or observes) and installs the page's
 * {@link PagePattern} of {@code generation}. {@link #close} closes the region, which ends them.
 */
final class FaultServer implements AutoCloseable {
    final AtomicLong faults = new AtomicLong();
    final AtomicLong installed = new AtomicLong();
    final AtomicLong alreadyPresent = new AtomicLong();
    private final MissingPageRegion region;
    private final long generation;
    private final LongConsumer beforeInstall;
    private final Thread[] threads;
    private final AtomicReference<Throwable> failure = new AtomicReference<>();

    FaultServer(MissingPageRegion region, int threadCount, long generation, LongConsumer beforeInstall) {
        this.region = region;
        this.generation = generation;
        this.beforeInstall = beforeInstall;
        this.threads = new Thread[threadCount];
        for (int i = 0; i < threadCount; i++) {
            threads[i] = Thread.ofPlatform().name("fault-server-" + i).daemon().start(this::serve);
        }
    }

    private void serve() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE);
            for (long page; (page = region.awaitFault(TimeUnit.SECONDS.toNanos(1))) != MissingPageRegion.CLOSED; ) {
                if (page == MissingPageRegion.NO_FAULT) {
                    continue;
                }
                faults.incrementAndGet();
                beforeInstall.accept(page);
                PagePattern.fill(buffer, page, generation);
                (region.install(page, buffer, 0) ? installed : alreadyPresent).incrementAndGet();
            }
        } catch (Throwable t) {
            failure.compareAndSet(null, t);
        }
    }

    /**
     * Waits (bounded) until every fault reported so far has been counted as installed or already
     * present: a guest wakes inside {@code install}, before its server thread counts the install.
     */
    void awaitSettled() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (faults.get() != installed.get() + alreadyPresent.get()) {
            assertFalse(System.nanoTime() - deadline > 0, "faults never settled");
            Thread.sleep(1);
        }
    }

    /** Closes the region, waits (bounded) for the threads to end and rethrows what any of them threw. */
    @Override
    public void close() {
        region.close();
        for (Thread thread : threads) {
            try {
                thread.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted closing " + this, e);
            }
            assertFalse(thread.isAlive(), thread + " did not end after close");
        }
        Throwable t = failure.get();
        if (t != null) {
            throw new AssertionError("fault server failed", t);
        }
    }
}
