package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class MigrationParametersTest {
    @Test
    void defaultsFollowQemuWhereQemuHasOne() {
        MigrationParameters p = MigrationParameters.defaults();
        assertEquals(300, p.downtimeLimitMillis());
        assertEquals(0, p.maxBandwidth(), "unlimited");
        assertEquals(64L << 20, p.xbzrleCacheSize());
        assertEquals(MigrationMode.PRECOPY, p.mode());
        assertEquals(30, p.maxRounds());
        assertEquals(0, p.totalTimeLimitMillis());
        assertEquals(Set.of(Capability.ZERO_PAGES, Capability.XBZRLE, Capability.LZ4, Capability.DEDUP), p.capabilities());
        assertEquals(1, p.zstdLevel());
        assertEquals(-1, p.postcopyAfterRounds());
        assertEquals(10_000, p.peerTimeoutMillis());
        assertEquals(60_000, p.recoverTimeoutMillis());
        assertTrue(p.adaptiveCompression());
    }

    @Test
    void aSystemPropertyChangesTheDefaultOfEveryNewBuilder() {
        System.setProperty(Configuration.MAX_ROUNDS_PROP_NAME, "7");
        try {
            assertEquals(7, MigrationParameters.defaults().maxRounds());
            assertEquals(12, MigrationParameters.builder().maxRounds(12).build().maxRounds(), "a setter still wins");
            System.setProperty(Configuration.MAX_ROUNDS_PROP_NAME, "0");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, MigrationParameters::builder);
            assertTrue(e.getMessage().contains("ferry.max-rounds") && e.getMessage().contains("must be >= 1"), e.getMessage());
        } finally {
            System.clearProperty(Configuration.MAX_ROUNDS_PROP_NAME);
        }
        assertEquals(Configuration.MAX_ROUNDS_DEFAULT, MigrationParameters.defaults().maxRounds());
    }

    @Test
    void rejectsOutOfRangeValuesNamingTheParameter() {
        MigrationParameters.Builder b = MigrationParameters.builder();
        assertRejected("downtime-limit", () -> b.downtimeLimitMillis(0));
        assertRejected("max-bandwidth", () -> b.maxBandwidth(-1));
        assertRejected("max-rounds", () -> b.maxRounds(0));
        assertRejected("time-limit", () -> b.totalTimeLimitMillis(-1));
        assertRejected("xbzrle-cache-size", () -> b.xbzrleCacheSize(0));
        assertRejected("zstd-level", () -> b.zstdLevel(23));
        assertRejected("zstd-level", () -> b.zstdLevel(-8));
        assertRejected("postcopy-after-rounds", () -> b.postcopyAfterRounds(-2));
        assertRejected("peer-timeout", () -> b.peerTimeoutMillis(0));
        assertRejected("recover-timeout", () -> b.recoverTimeoutMillis(-5));
        assertThrows(NullPointerException.class, () -> b.mode(null));
        assertEquals(MigrationParameters.defaults().toString(), b.build().toString(), "rejected values leave the builder as it was");
    }

    @Test
    void toBuilderCopiesAndCapabilitiesAreDefensive() {
        EnumSet<Capability> offered = EnumSet.of(Capability.XBZRLE, Capability.LZ4);
        MigrationParameters p = MigrationParameters.builder().downtimeLimitMillis(50).maxBandwidth(1 << 20)
                .capabilities(offered).mode(MigrationMode.HYBRID).build();
        offered.add(Capability.POSTCOPY);
        assertEquals(EnumSet.of(Capability.XBZRLE, Capability.LZ4), p.capabilities());
        p.capabilities().clear();
        assertEquals(2, p.capabilities().size());

        MigrationParameters q = p.toBuilder().maxRounds(3).build();
        assertEquals(50, q.downtimeLimitMillis());
        assertEquals(1 << 20, q.maxBandwidth());
        assertEquals(MigrationMode.HYBRID, q.mode());
        assertEquals(3, q.maxRounds());
        assertEquals(30, p.maxRounds());
        assertTrue(MigrationParameters.builder().capabilities(Set.of()).build().capabilities().isEmpty());
    }

    private static void assertRejected(String name, Runnable set) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, set::run);
        assertTrue(e.getMessage().contains(name), e.getMessage());
    }
}
