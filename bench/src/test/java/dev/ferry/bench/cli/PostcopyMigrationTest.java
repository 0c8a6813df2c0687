package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.bench.workload.Fill;
import dev.ferry.bench.workload.Workload;
import dev.ferry.bench.workload.Workloads;
import dev.ferry.core.Capability;
import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.FaultMechanism;
import dev.ferry.core.GuestMemory;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.ReportJson;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.PageGate;
import dev.ferry.engine.IncomingMigration;
import dev.ferry.engine.Migration;
import dev.ferry.engine.OutgoingMigration;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Post-copy under load: the guest runs on the destination while pages are still missing. */
class PostcopyMigrationTest {
    @TempDir
    Path dir;

    @Test
    void postcopyWithRealPageFaultsWhileSafepointsAreForced() throws Exception {
        // the process's warm-up migration is not under test here, and under a System.gc() loop
        // it would eat the handshake's time
        Migration.warmUp();
        AtomicBoolean stop = new AtomicBoolean();
        Thread collector = new Thread(() -> {
            while (!stop.get()) {
                System.gc();
            }
        }, "safepoint-forcer");
        collector.start();
        ObjectNode report;
        try {
            // every thread crawls between back-to-back collections: give the handshake time
            report = bench("--fault-mechanism", "userfaultfd", "--peer-timeout", "60000");
        } finally {
            stop.set(true);
            collector.join(10_000);
        }
        assertPostcopyCompleted(report, "userfaultfd");
    }

    @Test
    void postcopyWithTheSoftwareFaultPath() throws Exception {
        assertPostcopyCompleted(bench("--fault-mechanism", "software"), "software");
    }

    private static void assertPostcopyCompleted(ObjectNode report, String mechanism) {
        assertEquals("COMPLETED", report.get("outcome").asText(), String.valueOf(report.get("error")));
        assertTrue(report.get("verified").asBoolean());
        assertEquals(mechanism, report.get("faultMechanism").asText());
        // the raw copy of the same bytes ran into the destination's memory after post-copy ended
        assertTrue(report.get("memoryCopyBytesPerSec").asDouble() > 0, "same-bytes copy measured: " + report);
        assertTrue(report.get("throughputVsMemoryCopy").asDouble() > 0, "its ratio reported: " + report);
        assertEquals(1, report.get("switchoverRound").asInt());
        double faults = report.get("faults").asDouble();
        double requested = report.get("pagesRequested").asDouble();
        double pushed = report.get("pagesPushed").asDouble();
        assertTrue(faults > 0, "the guest touched missing pages: " + report);
        assertTrue(requested > 0 && requested <= faults, "each requested page was a fault: " + report);
        assertTrue(pushed > 0, "the rest came by the push");
        JsonNode rounds = report.get("rounds").get(1);
        assertEquals("postcopy", rounds.get("kind").asText());
        assertEquals(requested + pushed, rounds.get("pagesSent").asDouble(), 0.5, "every discarded page came exactly once");
        JsonNode latency = report.get("faultLatencyMicros");
        assertTrue(latency.get("p50").asDouble() <= latency.get("p99").asDouble());
        assertTrue(latency.get("max").asDouble() > 0);
        assertTrue(report.get("guestWritesDuringPostcopy").asDouble() > 0, "the guest kept writing on the destination");
    }

    private ObjectNode bench(String... extra) throws Exception {
        Path json = dir.resolve("report.json");
        String[] args = {"bench", "--mode", "postcopy", "--workload", "uniform:100", "--memory", "64m",
                "--max-bandwidth", "40000000", "--json", json.toString()};
        String[] all = java.util.stream.Stream.concat(java.util.Arrays.stream(args), java.util.Arrays.stream(extra))
                .toArray(String[]::new);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int code = Ferry.run(all, new PrintStream(out), new PrintStream(out));
        assertEquals(0, code, out.toString());
        return ReportJson.parseObject(Files.readString(json));
    }

    @Test
    void aRequestedSwitchMovesARunningPrecopyToPostcopyAndCancelIsThenRefused() throws Exception {
        try (Workload workload = Workloads.parse("uniform:50", 64L << 20, Fill.RANDOM, 4, false);
             GuestMemory source = GuestMemory.anonymous(workload.memoryBytes());
             GuestMemory target = GuestMemory.anonymous(workload.memoryBytes())) {
            workload.fill(source);
            DirtyBitmap sourceLog = new DirtyBitmap(source.pageCount());
            AtomicReference<IncomingMigration> incoming = new AtomicReference<>();
            WorkloadVm sourceVm = new WorkloadVm(workload, source, sourceLog, () -> PageGate.OPEN);
            WorkloadVm targetVm = new WorkloadVm(workload, target, new DirtyBitmap(target.pageCount()),
                    () -> incoming.get().pageGate());
            workload.start(source, sourceLog, PageGate.OPEN);
            SimpleMeterRegistry meters = new SimpleMeterRegistry();
            try (IncomingMigration in = Migration.destination(targetVm).memory(target)
                    .faultMechanism(FaultMechanism.SOFTWARE).meterRegistry(meters).start()) {
                incoming.set(in);
                OutgoingMigration out = Migration.source(source, sourceLog, sourceVm)
                        .parameters(MigrationParameters.builder().maxBandwidth(20_000_000).downtimeLimitMillis(1)
                                .capabilities(EnumSet.of(Capability.ZERO_PAGES, Capability.POSTCOPY)).build())
                        .connect(in.address()).start();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                // into the bulk round, with some of it sent: post-copy then has pages to push and to fetch
                while ((out.state() != MigrationState.BULK || out.progress().transferredBytes() < (4 << 20))
                        && !out.state().isTerminal() && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                out.startPostcopy();
                while (out.state() != MigrationState.POSTCOPY && !out.state().isTerminal() && System.nanoTime() < deadline) {
                    Thread.sleep(1);
                }
                if (out.state() == MigrationState.POSTCOPY) {
                    IllegalStateException refused = assertThrows(IllegalStateException.class, out::cancel);
                    assertTrue(refused.getMessage().contains("cannot cancel during post-copy"), refused.getMessage());
                }
                MigrationReport report = out.result().get(60, TimeUnit.SECONDS);
                assertTrue(report.succeeded(), report.error());
                assertEquals(1, report.postcopy().switchoverRound(), "switched in the middle of the bulk round");
                assertEquals(dev.ferry.core.RoundKind.POSTCOPY, report.rounds().getLast().kind());
                assertTrue(report.rounds().getFirst().pagesSent() < source.pageCount(),
                        "the bulk round stopped early: " + report.rounds().getFirst().pagesSent());
                MigrationReport destination = in.result().get(10, TimeUnit.SECONDS);
                assertTrue(destination.succeeded());
                assertTrue(destination.postcopy().faults() > 0, "the guest wrote to missing pages");
                assertEquals(destination.postcopy().faults(), meters.get("ferry.fault.latency").timer().count(),
                        "every fault reached Micrometer's timer");
            }
        }
    }
}
