package dev.ferry.compression;

import dev.ferry.core.Capability;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationParameters;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Set;

/** Source side: encodes each page as the smallest negotiated encoding. */
public final class PageEncoder implements AutoCloseable {
    public static final int MAX_PAYLOAD = GuestMemory.PAGE_SIZE;
    private final boolean zero;
    private int encoding;

    public PageEncoder(Set<Capability> negotiated, MigrationParameters params) {
        this.zero = negotiated.contains(Capability.ZERO_PAGES);
    }

    public int encode(long index, MemorySegment page, long pageOff, MemorySegment dst, long dstOff) {
        if (zero && isZero(page, pageOff)) {
            encoding = PageEncoding.ZERO;
            return 0;
        }
        MemorySegment.copy(page, pageOff, dst, dstOff, GuestMemory.PAGE_SIZE);
        encoding = PageEncoding.RAW;
        return GuestMemory.PAGE_SIZE;
    }

    private static boolean isZero(MemorySegment page, long off) {
        for (int i = 0; i < GuestMemory.PAGE_SIZE; i += 8) {
            if (page.get(ValueLayout.JAVA_LONG_UNALIGNED, off + i) != 0) {
                return false;
            }
        }
        return true;
    }

    public int encoding() {
        return encoding;
    }

    public void compressionEnabled(boolean on) {
    }

    @Override
    public void close() {
    }
}
