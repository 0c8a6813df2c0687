package dev.ferry.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ferry.core.Capability;
import java.util.EnumSet;
import org.junit.jupiter.api.Test;

class CapabilityMaskTest {
    @Test
    void bitsAreThoseOfTheWireProtocol() {
        assertEquals(0x01, Wire.bit(Capability.ZERO_PAGES));
        assertEquals(0x02, Wire.bit(Capability.XBZRLE));
        assertEquals(0x04, Wire.bit(Capability.LZ4));
        assertEquals(0x08, Wire.bit(Capability.ZSTD));
        assertEquals(0x20, Wire.bit(Capability.POSTCOPY));
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
            int mask = Wire.mask(set);
            assertEquals(set, Wire.capabilities(mask));
            assertEquals(set, Wire.capabilities(mask | 0xFFFF_FF00 | 1 << 6 | 1 << 7), "unknown bits are ignored");
        }
    }
}
