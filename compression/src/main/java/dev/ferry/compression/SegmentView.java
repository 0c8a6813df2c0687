package dev.ferry.compression;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * ByteBuffer views of the last few segments passed in, for the compressors' ByteBuffer APIs.
 * Making a view allocates, so views are kept per segment (by identity, {@value #WAYS} of them,
 * replaced round-robin): a caller cycling through up to that many buffers, such as a small ring
 * of staging pages, never allocates here.
 */
final class SegmentView {
    private static final int WAYS = 4;

    private final MemorySegment[] segments = new MemorySegment[WAYS];
    private final ByteBuffer[] buffers = new ByteBuffer[WAYS];
    private int next;

    /** A view of all of {@code s} (native, at most 2 GiB: the ByteBuffer limit). */
    ByteBuffer of(MemorySegment s) {
        for (int w = 0; w < WAYS; w++) {
            if (segments[w] == s) {
                return buffers[w];
            }
        }
        int w = next;
        next = (next + 1) % WAYS;
        buffers[w] = s.asByteBuffer();
        segments[w] = s;
        return buffers[w];
    }
}
