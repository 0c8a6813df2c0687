package dev.ferry.bench.trace;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The real traces summarise to the figures of traces.md. */
class TraceSummaryTest {
    static Path traces() {
        Path dir = Path.of(System.getProperty("ferry.traces", "/work/shared/traces"));
        Assumptions.assumeTrue(Files.isDirectory(dir), "no trace directory " + dir);
        return dir;
    }

    @ParameterizedTest
    @CsvSource({
            "guest-idle,  262144, 38153,  0.8545, 0.1557, 0.1111, 30, 15.07, 0.40,   0.95,   1671",
            "guest-redis, 131072, 122751, 0.0635, 0.6778, 0.6749, 24, 12.05, 40.37,  52.24,  110843",
            "guest-sort,  131072, 123185, 0.0602, 0.0156, 0.0148, 10, 2.38,  119.91, 325.33, 80652",
    })
    void matchesTracesMd(String trace, long pages, long nonZero, double zero, double duplicate, double redundant,
                         int epochs, double seconds, double p50, double max, long epochPages) throws IOException {
        TraceSummary s = TraceSummary.of(traces().resolve(trace + ".mtrace.zst"));
        assertEquals(pages, s.pageCount());
        assertEquals(nonZero, s.nonZeroPages());
        assertEquals(zero, s.zeroFraction(), 0.00005);
        assertEquals(duplicate, s.duplicateFraction(), 0.00005);
        assertEquals(redundant, s.redundantFraction(), 0.00005);
        assertEquals(epochs, s.epochs());
        assertEquals(seconds, s.durationMicros() / 1e6, 0.005);
        assertEquals(p50, s.dirtyRateP50(), 0.005);
        assertEquals(max, s.dirtyRateMax(), 0.005);
        assertEquals(epochPages, s.epochPages());
        assertTrue(s.compressed());
        assertTrue(s.format().contains(String.valueOf(nonZero)), s.format());
        System.out.print(s.format());
    }
}
