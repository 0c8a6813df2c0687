package dev.ferry.compression;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

class XbzrleCacheTest {
    @Test
    void holdsPagesAsInsertedAndCountsHitsMissesEvictions() {
        try (Arena arena = Arena.ofConfined(); XbzrleCache cache = new XbzrleCache(5L * Pages.PAGE + 100)) {
            assertEquals(4, cache.slots(), "largest power of two of pages that fits");
            Random rnd = new Random(5);
            byte[] a = Pages.anyPage(rnd);
            byte[] b = Pages.anyPage(rnd);
            assertEquals(-1, cache.lookup(1));
            cache.insert(1, Pages.nativeCopy(arena, a), 0);
            long at = cache.lookup(1);
            assertArrayEquals(a, Pages.bytes(cache.segment(), at, Pages.PAGE));
            cache.insert(5, Pages.nativeCopy(arena, b), 0);
            assertEquals(-1, cache.lookup(1), "5 shares slot 1 in a 4-slot cache");
            assertArrayEquals(b, Pages.bytes(cache.segment(), cache.lookup(5), Pages.PAGE));
            cache.insert(5, Pages.nativeCopy(arena, a), 0);
            assertArrayEquals(a, Pages.bytes(cache.segment(), cache.lookup(5), Pages.PAGE));
            cache.invalidate(5);
            assertEquals(-1, cache.lookup(5));
            assertEquals(3, cache.hits());
            assertEquals(3, cache.misses());
            assertEquals(1, cache.evictions(), "only replacing another index evicts");
        }
    }

    @Test
    void aCacheSmallerThanAPageStillHoldsOne() {
        try (XbzrleCache cache = new XbzrleCache(1)) {
            assertEquals(1, cache.slots());
        }
    }
}
