package dev.ferry.bench.workload;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * One guest thread: does bounded steps of writes, and parks between writes whenever its workload
 * asks. Keeps the time it spent parked so that paced and timed writing ignores pauses.
 */
abstract class Vcpu implements Runnable {
    private static final VarHandle WRITTEN;

    static {
        try {
            WRITTEN = MethodHandles.lookup().findVarHandle(Vcpu.class, "written", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final GuestWorkload owner;
    /** Written only by this vCPU's thread; read by others with acquire. */
    private long written;
    private volatile int parkedSequence;
    private volatile boolean exited;
    private long startNanos;
    private long pausedNanos;
    /** When the running slice began that throttling counts, or 0 while not throttled. */
    private long sliceStart;

    /** QEMU's CPU_THROTTLE_TIMESLICE: a throttled vCPU sleeps after each slice of this much running. */
    static final long THROTTLE_SLICE_NANOS = 10_000_000L;

    Vcpu(GuestWorkload owner) {
        this.owner = owner;
    }

    /**
     * Does a bounded amount of work on {@code target}: some writes (returning early as soon as
     * {@code owner.pauseRequested} is seen), or a short wait for the next one. Returns false when
     * this vCPU has nothing more to write.
     */
    abstract boolean step(Target target) throws Exception;

    /** Called on this vCPU's thread as it stops, however it stops. */
    void stopped() throws Exception {
    }

    /** Called after a pause of {@code nanos}. */
    void resumed(long nanos) {
    }

    @Override
    public final void run() {
        startNanos = owner.clock.nanoTime();
        try {
            while (owner.running) {
                if (owner.pauseRequested) {
                    parkWhilePaused();
                } else if (!step(owner.target())) {
                    break;
                } else {
                    throttle();
                }
            }
        } catch (Throwable t) {
            owner.fail(t);
        } finally {
            try {
                stopped();
            } catch (Exception e) {
                if (owner.failure() == null) {
                    owner.fail(e);
                }
            }
            exited = true;
        }
    }

    private void parkWhilePaused() {
        long from = owner.clock.nanoTime();
        while (owner.pauseRequested && owner.running) {
            parkedSequence = owner.pauseSequence;
            LockSupport.parkNanos(GuestWorkload.MAX_PARK_NANOS);
        }
        long paused = owner.clock.nanoTime() - from;
        pausedNanos += paused;
        resumed(paused);
    }

    /** Sleeps {@code percent / (100 - percent)} of each slice it ran, while the workload is throttled. */
    private void throttle() {
        int percent = owner.throttlePercent;
        long now = owner.clock.nanoTime();
        if (percent == 0) {
            sliceStart = 0;
            return;
        }
        if (sliceStart == 0) {
            sliceStart = now;
            return;
        }
        if (now - sliceStart < THROTTLE_SLICE_NANOS) {
            return;
        }
        long until = now + THROTTLE_SLICE_NANOS * percent / (100 - percent);
        for (long left = until - now; left > 0 && owner.running && !owner.pauseRequested;
                left = until - owner.clock.nanoTime()) {
            LockSupport.parkNanos(Math.min(left, GuestWorkload.MAX_PARK_NANOS));
        }
        long end = owner.clock.nanoTime();
        pausedNanos += end - now;
        resumed(end - now);
        sliceStart = end;
    }

    /** Whether this vCPU acknowledged pause {@code sequence}, or will never write again. */
    boolean parkedAt(int sequence) {
        return parkedSequence == sequence || exited;
    }

    /** Nanoseconds this vCPU has run, pauses excluded. */
    long runningNanos() {
        return owner.clock.nanoTime() - startNanos - pausedNanos;
    }

    /** Counts one page write; call after marking the page. */
    void wrote() {
        WRITTEN.setRelease(this, written + 1);
    }

    long written() {
        return (long) WRITTEN.getAcquire(this);
    }

    /** Sleeps at most {@link GuestWorkload#MAX_PARK_NANOS}, so pause and close are seen promptly. */
    static void sleep(long nanos) {
        LockSupport.parkNanos(Math.min(nanos, GuestWorkload.MAX_PARK_NANOS));
    }
}
