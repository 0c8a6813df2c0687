package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ConfigurationTest {
    @Test
    void everySettingHasOneNameItsPropertyAndADefaultItReadsBack() {
        Set<String> names = new HashSet<>();
        for (Setting<?> setting : Configuration.settings()) {
            assertTrue(names.add(setting.name()), "one setting per name: " + setting);
            assertEquals("ferry." + setting.name(), setting.propertyName());
            assertTrue(!setting.description().isBlank() && !setting.valueHint().isBlank(), setting.name());
            assertReadsBack(setting);
        }
        Set<String> declared = new HashSet<>();
        for (java.lang.reflect.Field f : Configuration.class.getFields()) {
            if (f.getType() == Setting.class) {
                try {
                    declared.add(((Setting<?>) f.get(null)).name());
                } catch (IllegalAccessException e) {
                    throw new AssertionError(e);
                }
            }
        }
        assertEquals(declared, names, "every setting Configuration declares is listed, and only those");
    }

    private static <T> void assertReadsBack(Setting<T> setting) {
        assertEquals(setting.defaultValue(), setting.parse(setting.format(setting.defaultValue())), setting.name());
        assertEquals(setting.defaultValue(), setting.value(), "no property set: " + setting.name());
    }

    @Test
    void numbersAreCheckedAgainstTheirRange() {
        assertEquals(-7, Configuration.ZSTD_LEVEL.parse(" -7 "));
        assertEquals("-7..22", Configuration.ZSTD_LEVEL.valueHint(), "a bounded range is its own hint");
        assertEquals("MS", Configuration.DOWNTIME_LIMIT.valueHint());
        assertRejected("zstd-level must be in -7..22, got 23", () -> Configuration.ZSTD_LEVEL.parse("23"));
        assertRejected("downtime-limit must be >= 1, got 0", () -> Configuration.DOWNTIME_LIMIT.parse("0"));
        assertRejected("max-bandwidth must be >= 0, got -1", () -> Configuration.MAX_BANDWIDTH.check(-1L));
        assertRejected("max-rounds takes a whole number, got '3.5'", () -> Configuration.MAX_ROUNDS.parse("3.5"));
        assertRejected("max-rounds takes a whole number, got '99999999999'", () -> Configuration.MAX_ROUNDS.parse("99999999999"));
        assertThrows(NullPointerException.class, () -> Configuration.PEER_TIMEOUT.check(null));
    }

    @Test
    void ratesTakeBinaryBytesOrDecimalBitsAndPrintInTheLargestExactUnit() {
        Setting<Long> rate = Configuration.MAX_BANDWIDTH;
        assertEquals(100L << 20, rate.parse("100M"));
        assertEquals(100L << 20, rate.parse("100m/s"));
        assertEquals(1L << 30, rate.parse("1g/s"));
        assertEquals(1L << 30, rate.parse("1GB/s"));
        assertEquals(100_000_000L, rate.parse("800mbit"));
        assertEquals(125_000_000L, rate.parse("1gbit"));
        assertEquals(8_000L, rate.parse("64kbit"));
        assertEquals(12_345, rate.parse("12345"));
        assertEquals(0, rate.parse("0"));
        assertEquals("100m/s", rate.format(100L << 20));
        assertEquals("0", rate.format(0L));
        assertEquals(100_000_000L, rate.parse(rate.format(100_000_000L)), "a rate reads back what it prints");
        assertEquals("RATE", rate.valueHint());
        assertRejected("max-bandwidth takes a rate such as 100m, 1g/s or 800mbit, got 'fast'", () -> rate.parse("fast"));
        assertRejected("max-bandwidth takes a rate such as 100m, 1g/s or 800mbit, got '-5m'", () -> rate.parse("-5m"));
    }

    @Test
    void sizesTakeBinaryUnitsAndPrintInTheLargestExactOne() {
        assertEquals(64L << 20, Configuration.XBZRLE_CACHE_SIZE.parse("64M"));
        assertEquals(4096, Setting.parseSize("4096"));
        assertEquals(3L << 40, Setting.parseSize("3t"));
        assertEquals("64m", Configuration.XBZRLE_CACHE_SIZE.format(64L << 20));
        assertEquals("1g", Configuration.XBZRLE_CACHE_SIZE.format(1L << 30));
        assertEquals("1025k", Configuration.XBZRLE_CACHE_SIZE.format(1025L << 10));
        assertEquals("4097", Configuration.XBZRLE_CACHE_SIZE.format(4097L));
        for (String bad : new String[] {"0", "-1m", "m", "", "1.5g", "9000000t"}) {
            assertThrows(IllegalArgumentException.class, () -> Setting.parseSize(bad), bad);
        }
        assertRejected("xbzrle-cache-size takes a size such as 512m or 1g, got '0'", () -> Configuration.XBZRLE_CACHE_SIZE.parse("0"));
    }

    @Test
    void choicesAreNamedInLowerCase() {
        assertEquals(MigrationMode.HYBRID, Configuration.MODE.parse("hybrid"));
        assertEquals("precopy|postcopy|hybrid", Configuration.MODE.valueHint());
        assertRejected("mode takes precopy, postcopy or hybrid, got 'HYBRID'", () -> Configuration.MODE.parse("HYBRID"));
        assertEquals(FaultMechanism.SOFTWARE, Configuration.FAULT_MECHANISM.parse("software"));
        assertEquals(false, Configuration.COMPRESSION.parse("always"));
        assertEquals("adaptive", Configuration.COMPRESSION.format(true));
    }

    @Test
    void stagesAreNoneAutoOrAListOfStages() {
        assertEquals(Set.of(), Configuration.STAGES.parse("none"));
        assertEquals(Configuration.STAGES_DEFAULT, Configuration.STAGES.parse("auto"));
        assertEquals(EnumSet.of(Capability.ZERO_PAGES, Capability.ZSTD), Configuration.STAGES.parse("zstd, zero"));
        assertEquals("zero,zstd", Configuration.STAGES.format(EnumSet.of(Capability.ZSTD, Capability.ZERO_PAGES)));
        assertEquals("none", Configuration.STAGES.format(Set.of()));
        assertRejected("stages takes none, auto or a list of zero,xbzrle,lz4,zstd,dedup, got 'zero,postcopy'",
                () -> Configuration.STAGES.parse("zero,postcopy"));
        assertRejected("stages takes", () -> Configuration.STAGES.parse("zero,lz5"));
    }

    @Test
    void addressesAreHostColonPort() {
        assertEquals(new InetSocketAddress("127.0.0.1", 7000), Configuration.LISTEN.parse("127.0.0.1:7000"));
        assertEquals("127.0.0.1:0", Configuration.LISTEN.format(Configuration.LISTEN_DEFAULT));
        for (String bad : new String[] {"7000", ":7000", "127.0.0.1:x", "127.0.0.1:70000"}) {
            assertRejected("listen takes HOST:PORT, got '" + bad + "'", () -> Configuration.LISTEN.parse(bad));
        }
    }

    private static void assertRejected(String message, Runnable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
        assertTrue(e.getMessage().startsWith(message), e.getMessage());
    }
}
