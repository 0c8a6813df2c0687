package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.ConvergencePolicy;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationProgress;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.SourceVmState;
import dev.ferry.core.SwitchoverReason;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/** What a manager polls and changes while a migration runs, on real sockets. */
class ProgressAndControlTest {
    private static final long DEADLINE_NANOS = 60_000_000_000L;

    /** Polls {@code out} every half millisecond until {@code until} holds of a snapshot (bounded). */
    private static List<MigrationProgress> pollUntil(OutgoingMigration out, Predicate<MigrationProgress> until) {
        List<MigrationProgress> samples = new ArrayList<>();
        long deadline = System.nanoTime() + DEADLINE_NANOS;
        while (System.nanoTime() < deadline) {
            MigrationProgress p = out.progress();
            samples.add(p);
            if (until.test(p)) {
                return samples;
            }
            LockSupport.parkNanos(500_000);
        }
        throw new AssertionError("no such progress within 60 s; last " + samples.getLast());
    }

    @Test
    void remainingNeverRunsBackwardsWithinARoundOnEitherSide() throws Exception {
        List<MigrationProgress> heard = new CopyOnWriteArrayList<>();
        MigrationListener destination = new MigrationListener() {
            @Override
            public void onProgress(MigrationProgress progress) {
                heard.add(progress);
            }
        };
        try (TestGuest source = new TestGuest(64L << 20, 5, true); TestGuest target = new TestGuest(64L << 20, 0, false)) {
            target.memory.segment().fill((byte) 0);
            try (IncomingMigration in = Migration.destination(target).memory(target.memory).listener(destination).start();
                 OutgoingMigration out = Migration.source(source.memory, source.dirty, source)
                         .parameters(MigrationParameters.builder().downtimeLimitMillis(50).maxBandwidth(100_000_000)
                                 .maxRounds(6).convergence(ConvergencePolicy.FORCE).build())
                         .connect(in.address()).start()) {
                List<MigrationProgress> samples = pollUntil(out, p -> p.state().isTerminal());
                MigrationReport report = out.await(Duration.ofSeconds(60));
                MigrationReport received = in.await(Duration.ofSeconds(10));
                assertTrue(report.succeeded(), report.error());
                assertTrue(samples.size() > 50, "samples: " + samples.size());
                int rounds = 0;
                for (int i = 1; i < samples.size(); i++) {
                    MigrationProgress a = samples.get(i - 1);
                    MigrationProgress b = samples.get(i);
                    assertTrue(b.transferredBytes() >= a.transferredBytes(), a + " then " + b);
                    assertTrue(b.round() >= a.round(), a + " then " + b);
                    if (a.round() == b.round() && a.round() > 0) {
                        assertTrue(b.remainingBytes() <= a.remainingBytes(), "remaining grew within round " + a.round()
                                + ": " + a.remainingBytes() + " then " + b.remainingBytes());
                    }
                    if (b.round() != a.round()) {
                        rounds++;
                    }
                    assertTrue(b.remainingBytes() <= b.totalBytes());
                }
                assertTrue(rounds >= 2, "saw the rounds go by: " + rounds);
                MigrationProgress last = out.progress();
                assertEquals(MigrationState.COMPLETED, last.state());
                assertEquals(0, last.remainingBytes());
                assertEquals(report.downtimeMs(), last.downtimeMs());
                assertEquals(report.migrationId(), last.migrationId());
                assertTrue(last.setupTimeMs() > 0 && last.setupTimeMs() < last.elapsedMs(), last.toString());
                assertTrue(last.pagesByKind().getOrDefault("zero", 0L) > 0, "per-stage counts: " + last.pagesByKind());

                assertTrue(heard.size() > 3, "the destination's listener heard " + heard.size());
                for (int i = 1; i < heard.size(); i++) {
                    assertTrue(heard.get(i).transferredBytes() >= heard.get(i - 1).transferredBytes());
                }
                MigrationProgress end = heard.getLast();
                assertEquals(MigrationState.COMPLETED, end.state());
                assertEquals(received.bytesSent(), end.transferredBytes());
                assertEquals(report.migrationId(), end.migrationId());
                assertEquals(received.bytesSent(), in.progress().transferredBytes());
            }
        }
    }

    @Test
    void maxBandwidthChangesWhileItRuns() throws Exception {
        try (TestGuest source = new TestGuest(32L << 20, 5, false); TestGuest target = new TestGuest(32L << 20, 0, false)) {
            target.memory.segment().fill((byte) 0);
            try (IncomingMigration in = Migration.destination(target).memory(target.memory).start();
                 OutgoingMigration out = Migration.source(source.memory, source.dirty, source)
                         .parameters(MigrationParameters.builder().maxBandwidth(2_000_000)
                                 .capabilities(EnumSet.noneOf(Capability.class)).build())
                         .connect(in.address()).start()) {
                pollUntil(out, p -> p.transferredBytes() > 1_000_000);
                assertEquals(2_000_000, out.maxBandwidth());
                out.maxBandwidth(0);
                assertEquals(0, out.maxBandwidth());
                // 32 MiB at 2 MB/s is 16 s: done in 8 s only if every channel went at once at the new rate
                MigrationReport report = out.await(Duration.ofSeconds(8));
                assertTrue(report.succeeded(), report.error());
                assertTrue(report.rounds().getFirst().bandwidthBytesPerSec() > 4_000_000, report.rounds().toString());
                assertThrows(IllegalArgumentException.class, () -> out.maxBandwidth(-1));
            }
        }
    }

    @Test
    void aDowntimeLimitRaisedWhileItRunsDecidesTheRoundsThatEnd() throws Exception {
        try (TestGuest source = new TestGuest(8L << 20, 5, true); TestGuest target = new TestGuest(8L << 20, 0, false)) {
            target.memory.segment().fill((byte) 0);
            try (IncomingMigration in = Migration.destination(target).memory(target.memory).start();
                 OutgoingMigration out = Migration.source(source.memory, source.dirty, source)
                         .parameters(MigrationParameters.builder().downtimeLimitMillis(1).maxBandwidth(8_000_000)
                                 .capabilities(EnumSet.noneOf(Capability.class)).convergence(ConvergencePolicy.FAIL)
                                 .build())
                         .connect(in.address()).start()) {
                // at 1 ms this guest stalls and fails (ConvergenceTest); the limit changes during the bulk round
                pollUntil(out, p -> p.state() == MigrationState.BULK && p.transferredBytes() > 100_000);
                out.downtimeLimitMillis(60_000);
                assertEquals(60_000, out.downtimeLimitMillis());
                MigrationReport report = out.await(Duration.ofSeconds(60));
                assertTrue(report.succeeded(), report.error());
                assertEquals(SwitchoverReason.CONVERGED, report.switchover().reason());
                assertEquals(60_000, report.switchover().downtimeLimitMs());
                assertThrows(IllegalArgumentException.class, () -> out.downtimeLimitMillis(0));
            }
        }
    }

    @Test
    void closingARunningMigrationCancelsItAndTheGuestKeepsRunning() throws Exception {
        try (TestGuest source = new TestGuest(32L << 20, 5, true); TestGuest target = new TestGuest(32L << 20, 0, false)) {
            target.memory.segment().fill((byte) 0);
            try (IncomingMigration in = Migration.destination(target).memory(target.memory).start()) {
                OutgoingMigration out = Migration.source(source.memory, source.dirty, source)
                        .parameters(MigrationParameters.builder().maxBandwidth(2_000_000).build())
                        .connect(in.address()).start();
                pollUntil(out, p -> p.transferredBytes() > 100_000);
                out.close();
                MigrationReport report = out.result().getNow(null);
                assertEquals(MigrationState.CANCELLED, report.outcome());
                assertEquals(SourceVmState.RUNNING, report.sourceVmState());
                assertEquals(0, source.resumes, "never paused");
            }
        }
    }

    @Test
    void theSourcesListenerHearsThePostcopyPushAsItGoes() throws Exception {
        List<MigrationProgress> heard = new CopyOnWriteArrayList<>();
        MigrationListener listener = new MigrationListener() {
            @Override
            public void onProgress(MigrationProgress progress) {
                heard.add(progress);
            }
        };
        try (TestGuest source = new TestGuest(32L << 20, 5, true); TestGuest target = new TestGuest(32L << 20, 0, false)) {
            try (IncomingMigration in = Migration.destination(target).memory(target.memory)
                    .faultMechanism(dev.ferry.core.FaultMechanism.SOFTWARE).start();
                 OutgoingMigration out = Migration.source(source.memory, source.dirty, source)
                         .parameters(MigrationParameters.builder().mode(dev.ferry.core.MigrationMode.POSTCOPY)
                                 .capabilities(EnumSet.of(Capability.ZERO_PAGES, Capability.POSTCOPY))
                                 .maxBandwidth(40_000_000).build())
                         .listener(listener).connect(in.address()).start()) {
                MigrationReport report = out.await(Duration.ofSeconds(60));
                assertTrue(report.succeeded(), report.error());
                assertTrue(in.await(Duration.ofSeconds(10)).succeeded());
            }
        }
        // 32 MiB at 40 MB/s is most of a second of push, the listener ticks every 50 ms or so of it
        List<MigrationProgress> postcopy = heard.stream().filter(p -> p.state() == MigrationState.POSTCOPY).toList();
        assertTrue(postcopy.size() >= 3, "snapshots heard during post-copy: " + postcopy.size());
        assertTrue(postcopy.getLast().transferredBytes() > postcopy.getFirst().transferredBytes(),
                "the push moved between them: " + postcopy.getFirst() + " then " + postcopy.getLast());
    }

    @Test
    void failuresToStartOrWaitAreFerrysOwnExceptions() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            MigrationException e = assertThrows(MigrationException.class, () -> Migration.destination(new RecordingVm())
                    .memoryFromHandshake().listen(new InetSocketAddress("127.0.0.1", taken.getLocalPort())).start());
            assertTrue(e.getMessage().contains(String.valueOf(taken.getLocalPort())) || e.getMessage().contains("in use"),
                    e.getMessage());
        }
        IncomingMigration waiting = Migration.destination(new RecordingVm()).memoryFromHandshake().start();
        try (IncomingMigration in = waiting) {
            assertThrows(MigrationTimeoutException.class, () -> in.await(Duration.ofMillis(50)));
            assertEquals(MigrationState.SETUP, in.progress().state());
        }
        // closed before any source came: its result is in at once, not at the accept timeout
        MigrationReport closed = waiting.result().getNow(null);
        assertEquals(MigrationState.FAILED, closed == null ? null : closed.outcome());
        assertTrue(closed.error().contains("closed"), closed.error());
        assertFalse(closed.destinationResumed());
    }
}
