package dev.ferry.bench.trace;

import java.lang.foreign.MemorySegment;

/** Receives the image's pages one by one. */
@FunctionalInterface
public interface PageSink {
    /**
     * Page {@code index} has the 4096 bytes of {@code page}; the segment is reused for the next
     * page, so copy what must outlive the call.
     */
    void page(long index, MemorySegment page);
}
