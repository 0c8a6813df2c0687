package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.ConvergencePolicy;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.SourceVmState;
import dev.ferry.core.SwitchoverReason;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A guest that dirties every page of a 4 MiB memory each round, migrated at 8 MB/s over real
 * sockets without stages (XBZRLE would shrink its 8-byte writes to nothing): pre-copy cannot
 * converge, and each policy does what it says.
 */
class ConvergenceTest {
    private static final long SIZE = 4L << 20;

    private static MigrationReport migrate(ConvergencePolicy policy, TestGuest source) throws Exception {
        try (TestGuest target = new TestGuest(SIZE, 0, false)) {
            target.memory.segment().fill((byte) 0);
            try (IncomingMigration in = Migration.destination(target).memory(target.memory).start()) {
                MigrationParameters params = MigrationParameters.builder().downtimeLimitMillis(5).maxBandwidth(8_000_000)
                        .capabilities(java.util.EnumSet.noneOf(dev.ferry.core.Capability.class)).convergence(policy).build();
                try (OutgoingMigration out = Migration.source(source.memory, source.dirty, source).parameters(params)
                        .connect(in.address()).start()) {
                    MigrationReport report = out.await(Duration.ofSeconds(60));
                    in.await(Duration.ofSeconds(10));
                    return report;
                }
            }
        }
    }

    @Test
    void failKeepsTheGuestRunningOnTheSource() throws Exception {
        try (TestGuest source = new TestGuest(SIZE, 3, true)) {
            MigrationReport report = migrate(ConvergencePolicy.FAIL, source);
            assertEquals(MigrationState.FAILED, report.outcome());
            assertEquals(SourceVmState.RUNNING, report.sourceVmState());
            assertTrue(report.error().contains("stalled"), report.error());
            assertEquals(SwitchoverReason.STALLED, report.switchover().reason());
            assertTrue(report.switchover().stalledRounds() >= 2);
            assertFalse(report.switchover().limitExceeded(), "the guest was never paused");
            assertEquals(0, source.resumes, "never paused, so never resumed");
        }
    }

    @Test
    void forceStopsAndCopiesAndSaysTheLimitWasExceeded() throws Exception {
        try (TestGuest source = new TestGuest(SIZE, 3, true)) {
            MigrationReport report = migrate(ConvergencePolicy.FORCE, source);
            assertTrue(report.succeeded(), report.error());
            assertEquals(SwitchoverReason.STALLED, report.switchover().reason());
            assertTrue(report.switchover().limitExceeded(), report.switchover().toString());
            assertTrue(report.downtimeLimitExceeded());
            assertTrue(report.error().contains("downtime limit"), report.error());
            assertTrue(report.downtimeMs() > 5 * 1.25, "a whole memory at 8 MB/s: " + report.downtimeMs());
        }
    }

    @Test
    void throttleStepsTheGuestDownAsQemuThenFailsAndLiftsIt() throws Exception {
        try (TestGuest source = new TestGuest(SIZE, 3, true)) {
            MigrationReport report = migrate(ConvergencePolicy.THROTTLE, source);
            // this guest ignores the throttle, so it stalls at 99% too
            assertEquals(MigrationState.FAILED, report.outcome(), report.switchover() + " " + report.rounds());
            assertEquals(List.of(20, 30, 40, 50, 60, 70, 80, 90, 99, 0), source.throttles, "lifted at the end");
            assertTrue(report.error().contains("throttled to 99%"), report.error());
            assertEquals(SourceVmState.RUNNING, report.sourceVmState());
        }
    }

    @Test
    void aGuestThatCannotBeThrottledFailsAtTheFirstStall() throws Exception {
        try (TestGuest source = new TestGuest(SIZE, 3, true)) {
            source.throttleable = false;
            MigrationReport report = migrate(ConvergencePolicy.THROTTLE, source);
            assertEquals(MigrationState.FAILED, report.outcome());
            assertEquals(List.of(), source.throttles);
            assertEquals(2, report.rounds().size(), "bulk and one stalled round: " + report.rounds());
        }
    }
}
