package dev.ferry.bench.cli;

import dev.ferry.bench.workload.Workload;
import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.PageGate;
import dev.ferry.core.VmControl;
import java.nio.charset.StandardCharsets;

/**
 * A workload as the hypervisor sees it: pausing parks its guest threads, resuming lets them
 * write again on this side's memory. One instance per side: the source's resumes on the source
 * memory (after a failure), the destination's on the destination memory (after the hand-over).
 */
final class WorkloadVm implements VmControl {
    private final Workload workload;
    private final GuestMemory memory;
    private final DirtyBitmap log;
    private final java.util.function.Supplier<PageGate> gate;
    private volatile boolean resumed;
    private volatile long resumedAtPagesWritten = -1;
    private volatile long resumedAtNanos;
    private volatile long pausedAtPagesWritten = -1;
    private volatile long pausedAtNanos;
    private byte[] loadedState;

    /**
     * @param gate where the guest's threads check pages on this side, asked at each resume: the
     *             destination's is the post-copy fault path
     */
    WorkloadVm(Workload workload, GuestMemory memory, DirtyBitmap log, java.util.function.Supplier<PageGate> gate) {
        this.workload = workload;
        this.memory = memory;
        this.log = log;
        this.gate = gate;
    }

    @Override
    public void pause() {
        workload.pause();
        pausedAtNanos = System.nanoTime();
        pausedAtPagesWritten = workload.pagesWritten();
    }

    @Override
    public void resume() {
        resumedAtPagesWritten = workload.pagesWritten();
        resumedAtNanos = System.nanoTime();
        workload.resume(memory, log, gate.get());
        resumed = true;
    }

    @Override
    public boolean throttle(int percent) {
        workload.throttle(percent);
        return true;
    }

    @Override
    public byte[] saveDeviceState() {
        return ("workload=" + workload.spec() + "\npagesWritten=" + workload.pagesWritten() + "\n")
                .getBytes(StandardCharsets.UTF_8);
    }

    /**
     * The same text as at the pause: a workload's device state is its counters, readable while it
     * runs. Taken before the bulk round, it also links the text's string concatenation there,
     * whose first run at the pause cost 1.5-5 ms.
     */
    @Override
    public byte[] sampleDeviceState() {
        return saveDeviceState();
    }

    @Override
    public void loadDeviceState(byte[] state) {
        loadedState = state.clone();
    }

    boolean resumed() {
        return resumed;
    }

    /** The workload's write count when this side resumed it, or -1. */
    long resumedAtPagesWritten() {
        return resumedAtPagesWritten;
    }

    /** When this side paused the guest, and its write count then (-1 if it never did). */
    long pausedAtNanos() {
        return pausedAtNanos;
    }

    long pausedAtPagesWritten() {
        return pausedAtPagesWritten;
    }

    /** When this side resumed the guest. */
    long resumedAtNanos() {
        return resumedAtNanos;
    }

    byte[] loadedState() {
        return loadedState;
    }
}
