package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class CapabilityTest {
    @Test
    void namesRoundTrip() {
        for (Capability c : Capability.values()) {
            assertEquals(c, Capability.byName(c.wireName()));
        }
        assertThrows(IllegalArgumentException.class, () -> Capability.byName("ZERO_PAGES"));
    }
}
