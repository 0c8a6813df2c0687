package dev.ferry.compression;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

class ZeroPagesTest {
    @Test
    void findsAnyNonZeroByteAtAnyOffset() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(Pages.PAGE + 16);
            for (long off : new long[] {0, 1, 3, 8, 13}) {
                assertTrue(ZeroPages.isZero(seg, off));
                for (int i = 0; i < Pages.PAGE; i++) {
                    seg.set(ValueLayout.JAVA_BYTE, off + i, (byte) (1 << (i & 7)));
                    assertFalse(ZeroPages.isZero(seg, off), "byte " + i + " at offset " + off);
                    seg.set(ValueLayout.JAVA_BYTE, off + i, (byte) 0);
                }
            }
            seg.set(ValueLayout.JAVA_BYTE, Pages.PAGE + 15, (byte) 1);
            assertTrue(ZeroPages.isZero(seg, 0), "a byte after the page is not part of it");
        }
    }
}
