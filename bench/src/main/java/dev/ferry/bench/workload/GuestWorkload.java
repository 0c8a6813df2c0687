package dev.ferry.bench.workload;

import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageGate;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The thread and pause machinery shared by every workload: runs one {@link Vcpu} per thread and
 * parks them all between writes on {@link #pause()}.
 *
 * <p>Pause protocol: {@code pause()} raises {@link #pauseRequested} and then bumps
 * {@link #pauseSequence}; a vCPU acknowledges only from its park loop, by publishing the sequence it
 * read. Reading the new sequence implies the request was already visible, so an acknowledged vCPU
 * stays parked until {@code resume()} clears the request: no write can be in flight.
 */
abstract class GuestWorkload implements Workload {
    static final long PAUSE_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(5);
    static final long JOIN_TIMEOUT_MILLIS = 5_000;
    /** The longest a vCPU sleeps before looking at its state again. */
    static final long MAX_PARK_NANOS = TimeUnit.MILLISECONDS.toNanos(1);

    private final String spec;
    final NanoClock clock;
    private volatile Target target;
    volatile boolean running;
    volatile boolean pauseRequested;
    volatile int pauseSequence;
    volatile int throttlePercent;
    private volatile Throwable failure;
    private Vcpu[] vcpus;
    private Thread[] threads;

    GuestWorkload(String spec, NanoClock clock) {
        this.spec = spec;
        this.clock = clock;
    }

    /** The vCPUs to run, one thread each; none for a guest that never writes. */
    abstract Vcpu[] createVcpus(GuestMemory memory);

    /** Releases what the workload holds besides its threads. */
    void release() {
    }

    @Override
    public String spec() {
        return spec;
    }

    @Override
    public void start(GuestMemory memory, DirtyBitmap log, PageGate gate) {
        if (vcpus != null) {
            throw new IllegalStateException("workload " + spec + " already started");
        }
        target = target(memory, log, gate);
        running = true;
        vcpus = createVcpus(memory);
        threads = new Thread[vcpus.length];
        for (int i = 0; i < vcpus.length; i++) {
            threads[i] = Thread.ofPlatform().daemon().name("ferry-guest-" + i).unstarted(vcpus[i]);
            threads[i].start();
        }
    }

    @Override
    public void pause() {
        requireStarted();
        pauseRequested = true;
        int sequence = pauseSequence + 1;
        pauseSequence = sequence;
        long deadline = clock.nanoTime() + PAUSE_TIMEOUT_NANOS;
        for (Vcpu vcpu : vcpus) {
            while (!vcpu.parkedAt(sequence)) {
                if (clock.nanoTime() - deadline > 0) {
                    throw new IllegalStateException("guest thread of " + spec + " did not park within "
                            + TimeUnit.NANOSECONDS.toMillis(PAUSE_TIMEOUT_NANOS) + " ms");
                }
                LockSupport.parkNanos(50_000);
            }
        }
    }

    @Override
    public void resume(GuestMemory memory, DirtyBitmap log, PageGate gate) {
        requireStarted();
        if (!pauseRequested) {
            throw new IllegalStateException("workload " + spec + " is not paused");
        }
        target = target(memory, log, gate);
        pauseRequested = false;
        for (Thread thread : threads) {
            LockSupport.unpark(thread);
        }
    }

    @Override
    public void throttle(int percent) {
        if (percent < 0 || percent > 99) {
            throw new IllegalArgumentException("throttle must be 0..99 percent, got " + percent);
        }
        throttlePercent = percent;
    }

    @Override
    public long pagesWritten() {
        long sum = 0;
        if (vcpus != null) {
            for (Vcpu vcpu : vcpus) {
                sum += vcpu.written();
            }
        }
        return sum;
    }

    @Override
    public Throwable failure() {
        return failure;
    }

    @Override
    public void close() {
        running = false;
        try {
            if (threads != null) {
                long deadline = System.currentTimeMillis() + JOIN_TIMEOUT_MILLIS;
                for (Thread thread : threads) {
                    LockSupport.unpark(thread);
                    thread.join(Math.max(1, deadline - System.currentTimeMillis()));
                    if (thread.isAlive()) {
                        throw new IllegalStateException(thread.getName() + " of " + spec + " did not stop within "
                                + JOIN_TIMEOUT_MILLIS + " ms");
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while stopping " + spec, e);
        } finally {
            release();
        }
    }

    Target target() {
        return target;
    }

    void fail(Throwable t) {
        failure = t;
    }

    void checkMemory(GuestMemory memory) {
        if (memory.byteSize() != memoryBytes()) {
            throw new IllegalArgumentException("workload " + spec + " is for " + memoryBytes()
                    + " bytes of guest memory, got " + memory.byteSize());
        }
    }

    private Target target(GuestMemory memory, DirtyBitmap log, PageGate gate) {
        checkMemory(memory);
        if (log.pageCount() != memory.pageCount()) {
            throw new IllegalArgumentException("dirty log of " + log.pageCount() + " pages for memory of "
                    + memory.pageCount());
        }
        return new Target(memory, log, gate);
    }

    private void requireStarted() {
        if (vcpus == null) {
            throw new IllegalStateException("workload " + spec + " not started");
        }
    }
}
