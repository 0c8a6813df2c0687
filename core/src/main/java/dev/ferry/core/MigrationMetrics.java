package dev.ferry.core;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.concurrent.TimeUnit;

/**
 * Micrometer meters of migrations, named {@code ferry.*} and tagged with the side:
 * bytes and pages sent, rounds, dirty rate, bandwidth, expected and actual downtime.
 */
public final class MigrationMetrics {
    private final Counter bytes;
    private final Counter pages;
    private final Counter rounds;
    private final DistributionSummary dirtyRate;
    private final DistributionSummary bandwidth;
    private final Timer expectedDowntime;
    private final Timer downtime;

    /** Meters registered in {@code registry} with tag {@code side=role}. */
    public MigrationMetrics(MeterRegistry registry, String role) {
        bytes = Counter.builder("ferry.bytes").baseUnit("bytes").description("bytes on the wire").tag("side", role).register(registry);
        pages = Counter.builder("ferry.pages").description("page records on the wire").tag("side", role).register(registry);
        rounds = Counter.builder("ferry.rounds").description("rounds sent").tag("side", role).register(registry);
        dirtyRate = DistributionSummary.builder("ferry.dirty.rate").baseUnit("bytes/s").description("pages dirtied per second x page size, per round").tag("side", role).register(registry);
        bandwidth = DistributionSummary.builder("ferry.bandwidth").baseUnit("bytes/s").description("wire bytes per second, per round").tag("side", role).register(registry);
        expectedDowntime = Timer.builder("ferry.downtime.expected").description("the estimator's figure at the switch-over").tag("side", role).register(registry);
        downtime = Timer.builder("ferry.downtime").description("source pause to destination resume").tag("side", role).register(registry);
    }

    /** Meters in a private registry, for callers that do not collect them. */
    public static MigrationMetrics unregistered(String role) {
        return new MigrationMetrics(new SimpleMeterRegistry(), role);
    }

    /** Counts bytes and page records on the wire. */
    public void sent(long byteCount, long pageCount) {
        bytes.increment(byteCount);
        pages.increment(pageCount);
    }

    /** Records a finished round. */
    public void round(RoundRecord round) {
        rounds.increment();
        bandwidth.record(round.bandwidthBytesPerSec());
        if (round.durationMs() > 0) {
            dirtyRate.record(round.dirtyPages() * (double) GuestMemory.PAGE_SIZE / (round.durationMs() / 1000.0));
        }
    }

    /** Records the switch-over: the estimate and, when known, the measured downtime. */
    public void switchover(double expectedMs, double actualMs) {
        if (expectedMs >= 0) {
            expectedDowntime.record((long) (expectedMs * 1000), TimeUnit.MICROSECONDS);
        }
        if (actualMs >= 0) {
            downtime.record((long) (actualMs * 1000), TimeUnit.MICROSECONDS);
        }
    }
}
