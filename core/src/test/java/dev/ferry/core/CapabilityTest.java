package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.EnumSet;
import org.junit.jupiter.api.Test;

class CapabilityTest {
    @Test
    void bitsAreThoseOfTheWireProtocol() {
        assertEquals(0x01, Capability.ZERO_PAGES.bit());
        assertEquals(0x02, Capability.XBZRLE.bit());
        assertEquals(0x04, Capability.LZ4.bit());
        assertEquals(0x08, Capability.ZSTD.bit());
        assertEquals(0x10, Capability.DEDUP.bit());
        assertEquals(0x20, Capability.POSTCOPY.bit());
    }

    @Test
    void everySubsetRoundTripsThroughItsMask() {
        Capability[] all = Capability.values();
        for (int subset = 0; subset < 1 << all.length; subset++) {
            EnumSet<Capability> set = EnumSet.noneOf(Capability.class);
            for (int i = 0; i < all.length; i++) {
                if ((subset & 1 << i) != 0) {
                    set.add(all[i]);
                }
            }
            int mask = Capability.mask(set);
            assertEquals(set, Capability.fromMask(mask));
            assertEquals(set, Capability.fromMask(mask | 0xFFFF_FF00 | 1 << 6), "unknown bits are ignored");
        }
    }

    @Test
    void namesRoundTrip() {
        for (Capability c : Capability.values()) {
            assertEquals(c, Capability.byName(c.wireName()));
        }
        assertThrows(IllegalArgumentException.class, () -> Capability.byName("ZERO_PAGES"));
    }
}
