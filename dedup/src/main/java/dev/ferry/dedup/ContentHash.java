package dev.ferry.dedup;

import dev.ferry.core.GuestMemory;
import java.lang.foreign.MemorySegment;
import net.openhft.hashing.LongTupleHashFunction;

/**
 * The 128-bit XXH3 hash of one page, which a dedup reference carries and the destination checks
 * its copy against: 128 bits, so that a copy with other content passing the check would take a
 * collision of about 2^64 pages, on top of the 64-bit hash the candidate was found by. One instance per thread: it keeps its result array, so
 * hashing allocates nothing.
 */
public final class ContentHash {
    private static final LongTupleHashFunction XX128 = LongTupleHashFunction.xx128();

    private final long[] result = new long[2];

    /**
     * Hashes the page at {@code offset} of {@code segment}, a native segment; read the hash with
     * {@link #high()} and {@link #low()}.
     */
    public void hash(MemorySegment segment, long offset) {
        java.util.Objects.checkFromIndexSize(offset, GuestMemory.PAGE_SIZE, segment.byteSize());
        if (!segment.isNative()) {
            throw new IllegalArgumentException("content hashing needs a native segment");
        }
        XX128.hashMemory(segment.address() + offset, GuestMemory.PAGE_SIZE, result);
    }

    /** Whether the page at {@code offset} of {@code segment} hashes to {@code high:low}. */
    public boolean matches(MemorySegment segment, long offset, long high, long low) {
        hash(segment, offset);
        return result[1] == high && result[0] == low;
    }

    /** The high 64 bits of the last hash. */
    public long high() {
        return result[1];
    }

    /** The low 64 bits of the last hash. */
    public long low() {
        return result[0];
    }
}
