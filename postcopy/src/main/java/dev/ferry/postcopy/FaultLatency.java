package dev.ferry.postcopy;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAccumulator;

/**
 * A lock-free histogram of fault latencies in microseconds, written by every guest thread that
 * faults. Buckets are log-linear: 8 per power of two, so a percentile read from them is within
 * 12.5% of the true value; a recording allocates nothing.
 */
public final class FaultLatency {
    private static final int SUB_BITS = 3;
    private static final int SUB = 1 << SUB_BITS;
    private static final int BUCKETS = 64 * SUB;

    private final AtomicLongArray counts = new AtomicLongArray(BUCKETS);
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
        counts.incrementAndGet(bucket(v));
        max.accumulate(v);
        timer.record(v, TimeUnit.MICROSECONDS);
    }

    static int bucket(long v) {
        if (v < SUB) {
            return (int) v;
        }
        int log = 63 - Long.numberOfLeadingZeros(v);
        int sub = (int) (v >>> (log - SUB_BITS)) & (SUB - 1);
        return (log - SUB_BITS + 1) * SUB + sub;
    }

    /** The largest value that falls in bucket {@code b}. */
    static long upperBound(int b) {
        if (b < SUB) {
            return b;
        }
        int log = b / SUB + SUB_BITS - 1;
        long base = 1L << log;
        long step = base >>> SUB_BITS;
        return base + (b % SUB + 1) * step - 1;
    }

    /** Faults recorded. */
    public long count() {
        long n = 0;
        for (int b = 0; b < BUCKETS; b++) {
            n += counts.get(b);
        }
        return n;
    }

    /** The largest latency recorded, exactly. */
    public long max() {
        return max.get();
    }

    /** The {@code q} quantile (0..1), as its bucket's upper bound, capped at the max; 0 when empty. */
    public long quantile(double q) {
        long total = count();
        if (total == 0) {
            return 0;
        }
        long rank = (long) Math.ceil(q * total);
        long seen = 0;
        for (int b = 0; b < BUCKETS; b++) {
            seen += counts.get(b);
            if (seen >= Math.max(1, rank)) {
                return Math.min(upperBound(b), max());
            }
        }
        return max();
    }

    /** The non-empty buckets as {upToMicros, count}. */
    public java.util.List<long[]> histogram() {
        java.util.List<long[]> buckets = new java.util.ArrayList<>();
        for (int b = 0; b < BUCKETS; b++) {
            long c = counts.get(b);
            if (c > 0) {
                buckets.add(new long[] {upperBound(b), c});
            }
        }
        return buckets;
    }
}
