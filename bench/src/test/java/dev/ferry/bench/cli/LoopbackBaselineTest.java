package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The yardsticks move real bytes over a real loopback socket. */
class LoopbackBaselineTest {
    @Test
    void theMemoryCopyLeavesTheTargetHoldingTheSourceBytes() throws Exception {
        // not a multiple of the 1 MiB chunk: the last chunk is a short one
        long bytes = (3L << 20) + 4096 * 3;
        // shared, as guest memory is: the reader writes it from a thread of its own
        try (Arena arena = Arena.ofShared()) {
            MemorySegment from = arena.allocate(bytes, 4096);
            MemorySegment into = arena.allocate(bytes, 4096);
            SplittableRandom random = new SplittableRandom(7);
            for (long at = 0; at < bytes; at += 8) {
                from.set(ValueLayout.JAVA_LONG_UNALIGNED, at, random.nextLong());
            }
            double rate = LoopbackBaseline.memoryToMemory(from, into);
            assertTrue(rate > 0, "a rate: " + rate);
            assertEquals(-1, from.mismatch(into), "the target holds the source's bytes");
        }
    }

    @Test
    void aTargetOfAnotherSizeIsRefused() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment from = arena.allocate(8192);
            MemorySegment into = arena.allocate(4096);
            assertThrows(IllegalArgumentException.class, () -> LoopbackBaseline.memoryToMemory(from, into));
        }
    }

    @Test
    void theBufferCopyMovesEveryByte() throws Exception {
        assertTrue(LoopbackBaseline.bytesPerSecond((2L << 20) + 17) > 0);
    }
}
