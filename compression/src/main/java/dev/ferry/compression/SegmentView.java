package dev.ferry.compression;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * A ByteBuffer view of the segment last passed in, for the compressors' ByteBuffer APIs. Making a
 * view allocates, so it is made again only when the caller switches segments; a caller that
 * reuses its buffers (the hot path does) never allocates here.
 */
final class SegmentView {
    private MemorySegment segment;
    private ByteBuffer buffer;

    /** A view of all of {@code s} (at most 2 GiB, the ByteBuffer limit). */
    ByteBuffer of(MemorySegment s) {
        if (s != segment) {
            buffer = s.asByteBuffer();
            segment = s;
        }
        return buffer;
    }
}
