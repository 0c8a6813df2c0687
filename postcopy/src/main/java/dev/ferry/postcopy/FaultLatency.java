package dev.ferry.postcopy;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAccumulator;
import org.HdrHistogram.AtomicHistogram;
import org.HdrHistogram.HistogramIterationValue;

/**
 * Fault latencies in microseconds, written by every guest thread that faults: an HdrHistogram
 * with two significant digits (a percentile is within 1% of the true value) over a fixed range,
 * so a recording is lock-free and allocates nothing; the max is kept exactly beside it.
 */
public final class FaultLatency {
    /** An hour: a fault that waits longer is recorded as an hour (the recovery timeout ends it well before). */
    static final long HIGHEST_MICROS = 3_600_000_000L;

    /** The report's buckets grow by this factor: four per power of two, enough to see a distribution's shape. */
    private static final double BUCKET_GROWTH = Math.pow(2, 0.25);

    private final AtomicHistogram histogram = new AtomicHistogram(HIGHEST_MICROS, 2);
    private final LongAccumulator max = new LongAccumulator(Math::max, 0);
    private final Timer timer;

    /** A histogram that also feeds Micrometer's {@code ferry.fault.latency} timer in {@code registry}. */
    public FaultLatency(MeterRegistry registry) {
        this.timer = Timer.builder("ferry.fault.latency")
                .description("a guest access to a missing page until the page was installed")
                .tag("side", "destination")
                .register(registry);
    }

    /** Records one fault that took {@code micros}. */
    public void record(long micros) {
        long v = Math.max(0, micros);
        histogram.recordValue(Math.min(v, HIGHEST_MICROS));
        max.accumulate(v);
        timer.record(v, TimeUnit.MICROSECONDS);
    }

    /** Faults recorded. */
    public long count() {
        return histogram.getTotalCount();
    }

    /** The largest latency recorded, exactly. */
    public long max() {
        return max.get();
    }

    /** The {@code q} quantile (0..1), as the highest value of its bucket, capped at the max; 0 when empty. */
    public long quantile(double q) {
        return count() == 0 ? 0 : Math.min(histogram.getValueAtPercentile(q * 100), max());
    }

    /** The non-empty buckets, four per power of two, as {upToMicros, count}. */
    public List<long[]> histogram() {
        List<long[]> buckets = new ArrayList<>();
        for (HistogramIterationValue v : histogram.logarithmicBucketValues(1, BUCKET_GROWTH)) {
            if (v.getCountAddedInThisIterationStep() > 0) {
                buckets.add(new long[] {v.getValueIteratedTo(), v.getCountAddedInThisIterationStep()});
            }
        }
        return buckets;
    }
}
