package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.BitSet;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class PageBitmapTest {
    @Test
    void scansAcrossWordBoundaries() {
        PageBitmap pages = new PageBitmap(300);
        for (long p : new long[] {63, 64, 127, 128, 299}) {
            assertTrue(pages.set(p));
        }
        assertFalse(pages.set(64));
        assertEquals(63, pages.nextSetBit(0));
        assertEquals(64, pages.nextSetBit(64));
        assertEquals(127, pages.nextSetBit(65));
        assertEquals(128, pages.nextSetBit(128));
        assertEquals(299, pages.nextSetBit(129));
        assertEquals(-1, pages.nextSetBit(300));
        assertEquals(0, pages.nextClearBit(0));
        assertEquals(65, pages.nextClearBit(63));
        assertEquals(129, pages.nextClearBit(127));
        assertEquals(5, pages.cardinality());
    }

    @Test
    void lastPartialWordStopsAtThePageCount() {
        PageBitmap pages = new PageBitmap(130);
        pages.setAll();
        assertEquals(130, pages.cardinality());
        assertEquals(-1, pages.nextClearBit(0), "bits past page 129 do not exist");
        assertEquals(-1, pages.nextClearBit(129));
        assertEquals(-1, pages.nextClearBit(130));
        assertTrue(pages.clear(129));
        assertEquals(129, pages.nextClearBit(0));
        assertEquals(128, pages.nextSetBit(128));
        assertEquals(-1, pages.nextSetBit(129));
        pages.clearAll();
        assertTrue(pages.isEmpty());
        assertEquals(-1, pages.nextSetBit(0));
    }

    @Test
    void orAndNotKeepTheCardinality() {
        PageBitmap a = new PageBitmap(200);
        PageBitmap b = new PageBitmap(200);
        for (long p = 0; p < 200; p += 3) {
            a.set(p);
        }
        for (long p = 0; p < 200; p += 5) {
            b.set(p);
        }
        a.or(b);
        // multiples of 3 (67) + of 5 (40) - of 15 (14)
        assertEquals(93, a.cardinality());
        a.andNot(b);
        assertEquals(67 - 14, a.cardinality());
        assertTrue(a.get(3) && !a.get(15) && !a.get(5));
        assertThrows(IllegalArgumentException.class, () -> a.or(new PageBitmap(201)));
        assertThrows(IllegalArgumentException.class, () -> a.andNot(new PageBitmap(199)));
    }

    /** Random operations agree with java.util.BitSet, the reference. */
    @Test
    void agreesWithBitSet() {
        SplittableRandom random = new SplittableRandom(42);
        int n = 1000;
        PageBitmap pages = new PageBitmap(n);
        PageBitmap other = new PageBitmap(n);
        BitSet expected = new BitSet(n);
        BitSet otherExpected = new BitSet(n);
        for (int step = 0; step < 20_000; step++) {
            int p = random.nextInt(n);
            switch (random.nextInt(6)) {
                case 0, 1 -> {
                    assertEquals(!expected.get(p), pages.set(p), "set " + p);
                    expected.set(p);
                }
                case 2 -> {
                    assertEquals(expected.get(p), pages.clear(p), "clear " + p);
                    expected.clear(p);
                }
                case 3 -> {
                    other.set(p);
                    otherExpected.set(p);
                }
                case 4 -> {
                    pages.or(other);
                    expected.or(otherExpected);
                }
                default -> {
                    pages.andNot(other);
                    expected.andNot(otherExpected);
                    other.clearAll();
                    otherExpected.clear();
                }
            }
            assertEquals(expected.cardinality(), pages.cardinality(), "step " + step);
            assertEquals(expected.nextSetBit(p), (int) pages.nextSetBit(p));
            int clear = expected.nextClearBit(p);
            assertEquals(clear < n ? clear : -1, (int) pages.nextClearBit(p));
        }
    }
}
