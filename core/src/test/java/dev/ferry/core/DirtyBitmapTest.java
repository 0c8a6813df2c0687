package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class DirtyBitmapTest {
    @Test
    void syncReturnsPagesNewToTheBitmapAndClearsTheLog() {
        DirtyBitmap dirty = new DirtyBitmap(200);
        PageBitmap into = new PageBitmap(200);
        dirty.mark(0);
        dirty.mark(63);
        dirty.mark(64);
        dirty.mark(199);
        dirty.mark(64);
        assertEquals(4, dirty.sync(into));
        assertEquals(4, into.cardinality());
        assertEquals(0, dirty.sync(into), "the log was cleared");

        dirty.mark(63);
        dirty.mark(100);
        assertEquals(1, dirty.sync(into), "page 63 was already in the bitmap, only 100 is new");
        assertEquals(5, into.cardinality());
        assertTrue(into.get(100) && into.get(199) && !into.get(198));
    }

    @Test
    void markAllCoversExactlyThePageCount() {
        DirtyBitmap dirty = new DirtyBitmap(130);
        dirty.markAll();
        PageBitmap into = new PageBitmap(130);
        assertEquals(130, dirty.sync(into));
        assertEquals(-1, into.nextClearBit(0));
        assertEquals(129, into.nextSetBit(129));
        assertEquals(0, dirty.sync(into));
    }

    @Test
    void refusesABitmapOfAnotherSizeAndBadCounts() {
        DirtyBitmap dirty = new DirtyBitmap(64);
        assertThrows(IllegalArgumentException.class, () -> dirty.sync(new PageBitmap(65)));
        assertThrows(IllegalArgumentException.class, () -> new DirtyBitmap(0));
        assertThrows(IllegalArgumentException.class, () -> new DirtyBitmap(-1));
        assertEquals(1, new DirtyBitmap(1).pageCount());
    }
}
