package dev.ferry.bench.workload;

import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.PageGate;

/**
 * A guest's vCPUs: threads that write guest memory and mark the dirty log exactly as a guest
 * under a hypervisor would, so a migration sees real concurrent writes.
 */
public interface Workload extends AutoCloseable {
    /** The {@code --workload} spec this workload came from. */
    String spec();

    /** The guest's size in bytes (for a trace, from its header). */
    long memoryBytes();

    /** Writes the initial contents of {@code memory}, before migration; not timed. */
    void fill(GuestMemory memory);

    /**
     * Starts the guest threads writing {@code memory}; each write stores its bytes, then marks the
     * page in {@code log}, and calls {@code gate.awaitPresent(page)} before touching the page.
     */
    void start(GuestMemory memory, DirtyBitmap log, PageGate gate);

    /**
     * Blocks until every guest thread is parked between writes; once it returns no write is in
     * flight. Throws {@link IllegalStateException} if a thread does not park in time.
     */
    void pause();

    /** Continues writing after {@link #pause()}, possibly to another memory with another log and gate. */
    void resume(GuestMemory memory, DirtyBitmap log, PageGate gate);

    /**
     * Lets every guest thread run only {@code 100 - percent}% of the time, as QEMU's cpu-throttle
     * does: after each 10 ms slice of running, a thread sleeps {@code 10 ms x percent / (100 -
     * percent)}; 0 lifts it. Paced and timed writing count the sleep as lost time, so the guest
     * dirties memory that much more slowly.
     *
     * @param percent 0..99
     */
    void throttle(int percent);

    /** Page writes so far, across every memory written. */
    long pagesWritten();

    /** What stopped a guest thread (a malformed trace found during replay, a failing gate), or null. */
    default Throwable failure() {
        return null;
    }

    /** Stops and joins the guest threads (bounded). */
    @Override
    void close();
}
