package dev.ferry.postcopy.uffd;

import dev.ferry.core.GuestMemory;
import java.lang.foreign.MemorySegment;

/**
 * Guest loads and stores that are safe on memory with missing pages: each copy is a downcall to
 * libc {@code memcpy}, so a thread that faults on a missing page blocks "in native", where JVM
 * safepoints do not wait for it (see {@link MissingPageRegion} for why Java code must not touch
 * that memory itself). Pages that are present cost a downcall and a copy, nothing more.
 *
 * <p>The other side of each copy must be native memory (a heap segment could only be passed to a
 * critical downcall, which stays "in Java") that no userfaultfd watches. A copy may cross page
 * boundaries; it faults on each missing page it meets. Thread-safe; use platform threads.
 */
public final class GuestAccess {
    private final GuestMemory memory;

    /** Accesses to {@code memory}, registered or not. */
    public GuestAccess(GuestMemory memory) {
        this.memory = memory;
    }

    /**
     * Stores {@code len} bytes of {@code src} at {@code srcOff} into the guest at byte
     * {@code offset} of page {@code page}, blocking while a page written to is missing.
     */
    public void write(long page, int offset, MemorySegment src, long srcOff, int len) {
        Libc.memcpy(guest(page, offset, len), other(src, srcOff, len), len);
    }

    /**
     * Loads {@code len} bytes from the guest at byte {@code offset} of page {@code page} into
     * {@code dst} at {@code dstOff}, blocking while a page read from is missing.
     */
    public void read(long page, int offset, MemorySegment dst, long dstOff, int len) {
        Libc.memcpy(other(dst, dstOff, len), guest(page, offset, len), len);
    }

    /** The guest bytes addressed, bounds-checked; slicing keeps the memory alive during the call. */
    private MemorySegment guest(long page, int offset, int len) {
        if (offset < 0 || offset >= GuestMemory.PAGE_SIZE) {
            throw new IndexOutOfBoundsException("offset " + offset + " outside a page");
        }
        if (page < 0 || page >= memory.pageCount()) {
            throw new IndexOutOfBoundsException("page " + page + " outside " + memory);
        }
        return memory.segment().asSlice((page << GuestMemory.PAGE_SHIFT) + offset, len);
    }

    private static MemorySegment other(MemorySegment segment, long offset, int len) {
        if (!segment.isNative()) {
            throw new IllegalArgumentException("guest copies need native memory, got " + segment);
        }
        return segment.asSlice(offset, len);
    }
}
