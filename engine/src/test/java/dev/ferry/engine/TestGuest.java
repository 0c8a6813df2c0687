package dev.ferry.engine;

import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.VmControl;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/** A guest for tests: random memory and one vCPU thread writing 8-byte words through the dirty log. */
final class TestGuest implements VmControl, AutoCloseable {
    final GuestMemory memory;
    final DirtyBitmap dirty;
    final AtomicLong writes = new AtomicLong();
    private final AtomicBoolean running = new AtomicBoolean();
    private final Object pauseLock = new Object();
    private volatile boolean pauseRequested;
    private boolean parked;
    private volatile boolean stop;
    private final Thread vcpu;
    byte[] loadedDeviceState;
    int resumes;
    /** What auto-converge asked for, in order; the guest keeps its pace (it cannot be slowed this way). */
    final java.util.List<Integer> throttles = new java.util.concurrent.CopyOnWriteArrayList<>();
    volatile boolean throttleable = true;

    TestGuest(long bytes, long seed, boolean writing) {
        memory = GuestMemory.anonymous(bytes);
        dirty = new DirtyBitmap(memory.pageCount());
        SplittableRandom random = new SplittableRandom(seed);
        for (long off = 0; off < bytes; off += 8) {
            // a quarter of the pages stay zero
            if (((off >>> 12) & 3) != 0) {
                memory.segment().set(ValueLayout.JAVA_LONG, off, random.nextLong());
            }
        }
        vcpu = new Thread(() -> run(seed), "test-vcpu");
        vcpu.setDaemon(true);
        if (writing) {
            running.set(true);
            vcpu.start();
        }
    }

    private void run(long seed) {
        SplittableRandom random = new SplittableRandom(seed + 1);
        long pages = memory.pageCount();
        while (!stop) {
            if (pauseRequested) {
                synchronized (pauseLock) {
                    parked = true;
                    pauseLock.notifyAll();
                    while (pauseRequested && !stop) {
                        try {
                            pauseLock.wait(100);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                    parked = false;
                }
                continue;
            }
            long page = random.nextLong(pages);
            memory.segment().set(ValueLayout.JAVA_LONG, (page << 12) + 8 * random.nextInt(512), random.nextLong());
            dirty.mark(page);
            // about 16 pages a millisecond (64 MB/s): a busy guest that still converges
            if ((writes.incrementAndGet() & 15) == 0) {
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
            }
        }
    }

    @Override
    public void pause() {
        if (!running.get()) {
            return;
        }
        synchronized (pauseLock) {
            pauseRequested = true;
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (!parked) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("vCPU did not park");
                }
                try {
                    pauseLock.wait(10);
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }

    @Override
    public void resume() {
        resumes++;
        synchronized (pauseLock) {
            pauseRequested = false;
            pauseLock.notifyAll();
        }
    }

    @Override
    public boolean throttle(int percent) {
        if (!throttleable) {
            return false;
        }
        throttles.add(percent);
        return true;
    }

    @Override
    public byte[] saveDeviceState() {
        return ("device state of " + memory.byteSize()).getBytes();
    }

    @Override
    public void loadDeviceState(byte[] state) {
        loadedDeviceState = state;
    }

    @Override
    public void close() {
        stop = true;
        resume();
        try {
            vcpu.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        memory.close();
    }
}
