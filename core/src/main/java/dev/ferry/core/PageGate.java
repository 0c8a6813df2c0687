package dev.ferry.core;

import java.lang.foreign.MemorySegment;

/**
 * A guest thread's path to guest memory on one side. Before it touches a page it calls
 * {@link #awaitPresent}; it stores through {@link #store}.
 *
 * <p>With the software fault path, {@code awaitPresent} blocks during post-copy until the page has
 * arrived and stores are plain Java stores. With userfaultfd the kernel blocks an access to a
 * missing page instead, so {@code awaitPresent} does nothing and {@code store} is a native copy:
 * a thread that faults inside Java code would hold up every safepoint of the JVM while the
 * threads that could fetch its page wait at that safepoint.
 */
public interface PageGate {
    /** The path to memory that holds every page. */
    PageGate OPEN = page -> { };

    /** Returns once page {@code page} may be read and written. */
    void awaitPresent(long page);

    /**
     * Stores {@code length} bytes of {@code src} (native memory) at {@code dstOffset} of
     * {@code memory}, within one page the caller has awaited.
     */
    default void store(MemorySegment src, long srcOffset, GuestMemory memory, long dstOffset, int length) {
        MemorySegment.copy(src, srcOffset, memory.segment(), dstOffset, length);
    }
}
