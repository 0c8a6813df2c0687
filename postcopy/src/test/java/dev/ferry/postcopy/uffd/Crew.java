package dev.ferry.postcopy.uffd;

import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Guest threads (platform threads, as guest accesses must be) joined within a bound: a thread that
 * stays blocked on a fault fails the test instead of hanging it.
 */
final class Crew {
    /** A guest thread's work, told its index. */
    @FunctionalInterface
    interface Work {
        void run(int index) throws Exception;
    }

    private final List<Thread> threads = new ArrayList<>();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();

    /** Starts {@code count} threads named {@code name}-i running {@code work}. */
    Crew start(String name, int count, Work work) {
        for (int i = 0; i < count; i++) {
            int index = i;
            threads.add(Thread.ofPlatform().name(name + "-" + i).daemon().start(() -> {
                try {
                    work.run(index);
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }));
        }
        return this;
    }

    /** Whether every thread has ended. */
    boolean done() {
        return threads.stream().noneMatch(Thread::isAlive);
    }

    /** Waits until every thread has ended, at most {@code seconds} in all; rethrows a thread's failure. */
    void join(long seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        for (Thread thread : threads) {
            thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
            assertFalse(thread.isAlive(), thread + " still running after " + seconds + " s: blocked on a fault?");
        }
        Throwable t = failure.get();
        if (t != null) {
            throw new AssertionError("guest thread failed", t);
        }
    }
}
