package dev.ferry.core;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;

/**
 * Micrometer meters of one side of one migration, named {@code ferry.*} and tagged with the
 * {@code side}, the {@code migration} id and the {@code guest}, so that migrations in one process
 * are series of their own. The byte count and the gauges (remaining, dirty rate, throughput,
 * expected downtime, round, throttle, state) read the migration's live progress when scraped, so
 * they move as pages go, not only at round ends; the per-round summaries and the downtime timers
 * are recorded as rounds and the switch-over happen.
 */
public final class MigrationMetrics {
    private final Counter rounds;
    private final DistributionSummary dirtyRate;
    private final DistributionSummary bandwidth;
    private final Timer expectedDowntime;
    private final Timer downtime;

    /**
     * Meters registered in {@code registry} for the migration whose snapshots {@code progress}
     * takes (the gauges hold it strongly, so the meters show a finished migration's last figures).
     */
    public MigrationMetrics(MeterRegistry registry, String side, String migrationId, String guest,
            Supplier<MigrationProgress> progress) {
        Tags tags = Tags.of("side", side, "migration", migrationId, "guest", guest);
        FunctionCounter.builder("ferry.bytes", progress, p -> p.get().transferredBytes()).baseUnit("bytes")
                .description("bytes on the wire (received, on the destination)").tags(tags).register(registry);
        gauge(registry, "ferry.remaining", "bytes", "guest memory still to send in this round (missing, in post-copy)",
                tags, progress, p -> p.remainingBytes());
        gauge(registry, "ferry.dirty.rate", "bytes/s", "pages the guest dirtied per second in the last round x page size",
                tags, progress, p -> p.dirtyRateBytesPerSec());
        gauge(registry, "ferry.throughput", "bytes/s", "wire bytes per second of the last round", tags, progress,
                p -> p.throughputBytesPerSec());
        gauge(registry, "ferry.downtime.expected.now", "ms", "the estimate after the last round, fixed costs included",
                tags, progress, p -> p.expectedDowntimeMs());
        gauge(registry, "ferry.round", null, "dirty-log syncs so far (QEMU dirty-sync-count)", tags, progress,
                p -> p.round());
        gauge(registry, "ferry.throttle", "percent", "how much the guest is slowed down (auto-converge)", tags, progress,
                p -> p.throttlePercent());
        for (MigrationState state : MigrationState.values()) {
            Gauge.builder("ferry.state", progress, p -> p.get().state() == state ? 1 : 0)
                    .description("1 for the state the migration is in").tags(tags).tag("state", state.name())
                    .strongReference(true).register(registry);
        }
        rounds = Counter.builder("ferry.rounds").description("rounds sent").tags(tags).register(registry);
        dirtyRate = DistributionSummary.builder("ferry.round.dirty.rate").baseUnit("bytes/s")
                .description("pages dirtied per second x page size, per round").tags(tags).register(registry);
        bandwidth = DistributionSummary.builder("ferry.round.bandwidth").baseUnit("bytes/s")
                .description("wire bytes per second, per round").tags(tags).register(registry);
        expectedDowntime = Timer.builder("ferry.downtime.expected")
                .description("the estimator's figure at the switch-over").tags(tags).register(registry);
        downtime = Timer.builder("ferry.downtime").description("source pause to destination resume").tags(tags)
                .register(registry);
    }

    private static void gauge(MeterRegistry registry, String name, String unit, String description, Tags tags,
            Supplier<MigrationProgress> progress, ToDoubleFunction<MigrationProgress> value) {
        Gauge.builder(name, progress, p -> value.applyAsDouble(p.get())).baseUnit(unit).description(description)
                .tags(tags).strongReference(true).register(registry);
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
