package dev.ferry.postcopy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class FaultLatencyTest {
    @Test
    void quantilesAreWithinAHundredthOfTheExactOnes() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        FaultLatency latency = new FaultLatency(registry);
        SplittableRandom random = new SplittableRandom(9);
        long[] values = new long[20_000];
        for (int i = 0; i < values.length; i++) {
            values[i] = (long) Math.exp(random.nextDouble() * Math.log(200_000));
            latency.record(values[i]);
        }
        Arrays.sort(values);
        assertEquals(values.length, latency.count());
        assertEquals(values[values.length - 1], latency.max());
        for (double q : new double[] {0.5, 0.9, 0.99}) {
            long exact = values[(int) Math.ceil(q * values.length) - 1];
            long estimate = latency.quantile(q);
            assertTrue(estimate >= exact && estimate <= exact + exact / 100 + 1, "q" + q + ": " + estimate + " vs " + exact);
        }
        long inHistogram = latency.histogram().stream().mapToLong(b -> b[1]).sum();
        assertEquals(values.length, inHistogram);
        long[] last = latency.histogram().getLast();
        assertTrue(last[0] >= values[values.length - 1], "the last bucket holds the slowest fault");
        Timer timer = registry.get("ferry.fault.latency").timer();
        assertEquals(values.length, timer.count(), "every fault reaches Micrometer too");
        assertEquals(values[values.length - 1], timer.max(TimeUnit.MICROSECONDS), 0.5);
        latency.record(Long.MAX_VALUE);
        assertEquals(Long.MAX_VALUE, latency.max(), "a fault beyond the histogram's range is still counted and is the max");
        assertEquals(values.length + 1, latency.count());
    }

    @Test
    void anEmptyHistogramSaysZero() {
        FaultLatency latency = new FaultLatency(new SimpleMeterRegistry());
        assertEquals(0, latency.quantile(0.99));
        assertEquals(0, latency.max());
        assertTrue(latency.histogram().isEmpty());
    }
}
