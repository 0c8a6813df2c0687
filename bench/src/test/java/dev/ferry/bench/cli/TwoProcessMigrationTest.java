package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.bench.workload.Fill;
import dev.ferry.bench.workload.Workload;
import dev.ferry.bench.workload.Workloads;
import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.PageDigest;
import dev.ferry.core.PageGate;
import dev.ferry.core.SourceVmState;
import dev.ferry.engine.Migration;
import dev.ferry.engine.OutgoingMigration;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Migrations between real processes over real loopback sockets, and the ways they fail. */
class TwoProcessMigrationTest {
    @TempDir
    Path dir;

    @Test
    void migratesARunningGuestToAnotherProcess() throws Exception {
        Path destJson = dir.resolve("dest.json");
        Path sourceJson = dir.resolve("source.json");
        try (FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "127.0.0.1:0", "--json", destJson.toString())) {
            int port = dest.awaitListeningPort();
            try (FerryProcess source = FerryProcess.start(dir, "source", "--connect", "127.0.0.1:" + port,
                    "--workload", "hotset:0.1:50", "--memory", "128m", "--fill", "mixed", "--json", sourceJson.toString())) {
                assertEquals(0, source.awaitExit(120), source::outputText);
            }
            assertEquals(0, dest.awaitExit(30), dest::outputText);
        }
        String s = Files.readString(sourceJson);
        String d = Files.readString(destJson);
        assertEquals("COMPLETED", field(s, "outcome"));
        assertEquals("true", field(s, "verified"));
        assertEquals("STOPPED", field(s, "sourceVmState"));
        assertEquals("true", field(d, "destinationResumed"));
        assertEquals(field(s, "digest"), field(d, "digest"), "both sides agree on the memory digest");
        assertEquals(field(s, "bytesSent"), field(d, "bytesSent"), "every byte sent was received");
    }

    @Test
    void destinationKilledMidMigrationLeavesTheGuestRunningOnTheSource() throws Exception {
        try (FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "127.0.0.1:0");
             Workload workload = Workloads.parse("uniform:20", 256L << 20, Fill.RANDOM, 3, false);
             GuestMemory memory = GuestMemory.anonymous(workload.memoryBytes())) {
            int port = dest.awaitListeningPort();
            workload.fill(memory);
            DirtyBitmap log = new DirtyBitmap(memory.pageCount());
            WorkloadVm vm = new WorkloadVm(workload, memory, log, () -> PageGate.OPEN);
            workload.start(memory, log, PageGate.OPEN);
            OutgoingMigration migration = Migration.source(memory, log, vm)
                    .parameters(MigrationParameters.builder().maxBandwidth(40_000_000).build())
                    .connect(new InetSocketAddress("127.0.0.1", port)).start();
            awaitBytesOnWire(migration);
            dest.process.destroyForcibly();

            MigrationReport report = migration.result().get(60, TimeUnit.SECONDS);
            assertEquals(MigrationState.FAILED, report.outcome());
            assertEquals(SourceVmState.RUNNING, report.sourceVmState());
            assertFalse(report.verified());
            assertTrue(report.error() != null && !report.error().isBlank(), "says why");
            long before = workload.pagesWritten();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (workload.pagesWritten() == before && System.nanoTime() < deadline) {
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
            }
            assertTrue(workload.pagesWritten() > before, "the guest keeps running on the source");
        }
    }

    @Test
    void sourceKilledMidMigrationNeverResumesTheDestination() throws Exception {
        Path destJson = dir.resolve("dest.json");
        try (FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "127.0.0.1:0", "--json", destJson.toString())) {
            int port = dest.awaitListeningPort();
            try (FerryProcess source = FerryProcess.start(dir, "source", "--connect", "127.0.0.1:" + port,
                    "--workload", "uniform:20", "--memory", "256m", "--max-bandwidth", "20000000", "--progress", "json")) {
                // killed once it is sending pages: its progress says so
                source.awaitLineContaining("\"state\":\"BULK\"");
                assertTrue(source.process.isAlive(), source::outputText);
                source.process.destroyForcibly();
            }
            assertEquals(1, dest.awaitExit(30), dest::outputText);
        }
        String d = Files.readString(destJson);
        assertEquals("FAILED", field(d, "outcome"));
        assertEquals("false", field(d, "destinationResumed"));
        assertTrue(field(d, "error").contains("connection lost before the end of the stream"), d);
    }

    @Test
    void sourceKilledDuringPostcopyIsReportedAsALostGuestNeverAsSuccess() throws Exception {
        Path destJson = dir.resolve("dest.json");
        try (FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "127.0.0.1:0", "--json", destJson.toString(),
                "--recover-timeout", "2000")) {
            int port = dest.awaitListeningPort();
            try (FerryProcess source = FerryProcess.start(dir, "source", "--connect", "127.0.0.1:" + port,
                    "--mode", "postcopy", "--workload", "uniform:50", "--memory", "32m", "--max-bandwidth", "10000000")) {
                dest.awaitLine("resumed");
                source.process.destroyForcibly();
            }
            assertEquals(1, dest.awaitExit(30), dest::outputText);
        }
        String d = Files.readString(destJson);
        assertEquals("FAILED", field(d, "outcome"));
        assertEquals("false", field(d, "verified"));
        assertEquals("true", field(d, "destinationResumed"), "it had resumed: that is what post-copy is");
        assertTrue(field(d, "error").contains("post-copy failed with"), d);
        assertTrue(field(d, "error").contains("pages never received, so the guest cannot continue here"), d);
        assertTrue(field(d, "error").contains("the source did not reconnect within 2000 ms"), d);
    }

    @Test
    void postcopySurvivesCutLinksIncludingACutDuringTheRecoveryHandshake() throws Exception {
        Path destJson = dir.resolve("dest.json");
        Path sourceJson = dir.resolve("source.json");
        try (FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "127.0.0.1:0", "--json", destJson.toString());
             CuttableProxy proxy = new CuttableProxy(dest.awaitListeningPort());
             FerryProcess source = FerryProcess.start(dir, "source", "--connect", "127.0.0.1:" + proxy.port(),
                     "--mode", "postcopy", "--workload", "uniform:50", "--memory", "32m", "--max-bandwidth", "10000000",
                     "--recover-timeout", "20000", "--json", sourceJson.toString())) {
            dest.awaitLine("resumed");
            // cut at the switch-over itself, before the push got going
            long cutAt = proxy.carriedUp();
            proxy.cutAll();
            // the source reconnects and pushes again: 256 KiB of it carried is the middle of the push
            assertTrue(proxy.awaitCarriedUp(cutAt, 256 << 10, 60_000), "the source never came back after the first cut");
            // cut again in the middle of the push, and cut the reconnection right after its RECOVER
            // frame (37 bytes: length, type, magic, session, migration id) reached the destination
            proxy.cutNextAfter(37);
            proxy.cutAll();
            assertEquals(0, source.awaitExit(120), source::outputText);
            assertEquals(0, dest.awaitExit(30), dest::outputText);
            assertTrue(proxy.connections.get() >= 4, "the first link, a reconnection, a cut one, a good one: "
                    + proxy.connections);
        }
        String s = Files.readString(sourceJson);
        String d = Files.readString(destJson);
        assertEquals("COMPLETED", field(s, "outcome"));
        assertEquals("true", field(s, "verified"), "every page arrived exactly as it was at the switch-over");
        assertEquals(field(s, "digest"), field(d, "digest"));
        assertTrue(Integer.parseInt(field(s, "recoveries")) >= 2, s);
        assertTrue(Integer.parseInt(field(d, "recoveries")) >= 3, "the destination took the cut reconnection too: " + d);
    }

    @Test
    void destinationRefusesAStreamThatIsNotFerry() throws Exception {
        Path destJson = dir.resolve("dest.json");
        try (FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "127.0.0.1:0", "--accept-timeout", "3000",
                "--json", destJson.toString())) {
            int port = dest.awaitListeningPort();
            try (Socket socket = new Socket("127.0.0.1", port)) {
                OutputStream out = socket.getOutputStream();
                out.write(new byte[] {0, 0, 0, 28, 1, 'Q', 'E', 'M', 'U', '-', 'V', 'M', 'S'});
                out.write(new byte[19]);
                out.flush();
                InputStream in = socket.getInputStream();
                byte[] reply = in.readAllBytes();
                assertTrue(reply.length > 5 && reply[4] == 0x7F, "an ERROR frame comes back");
                assertTrue(new String(reply, 5, reply.length - 5).contains("bad magic"));
            }
            assertEquals(1, dest.awaitExit(30), dest::outputText);
        }
        String d = Files.readString(destJson);
        assertEquals("FAILED", field(d, "outcome"));
        assertEquals("false", field(d, "destinationResumed"));
        // the stranger was refused and forgotten: the destination waited for its source, and says whom it refused
        assertTrue(field(d, "error").contains("no source's HELLO was taken within the accept timeout of 3000 ms"), d);
        assertTrue(field(d, "error").contains("bad magic"), d);
    }

    @Test
    void memorySizeMismatchIsRefusedOnBothSides() throws Exception {
        Path sourceJson = dir.resolve("source.json");
        // the refused source is forgotten: the destination waits for another until its accept timeout
        try (FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "127.0.0.1:0", "--memory", "64m",
                "--accept-timeout", "20000")) {
            int port = dest.awaitListeningPort();
            try (FerryProcess source = FerryProcess.start(dir, "source", "--connect", "127.0.0.1:" + port,
                    "--workload", "idle", "--memory", "128m", "--json", sourceJson.toString())) {
                assertEquals(1, source.awaitExit(60), source::outputText);
            }
            assertEquals(1, dest.awaitExit(60), dest::outputText);
        }
        String s = Files.readString(sourceJson);
        assertEquals("FAILED", field(s, "outcome"));
        assertEquals("RUNNING", field(s, "sourceVmState"));
        assertTrue(field(s, "error").contains("source memory is 134217728 bytes, destination has 67108864"), s);
    }

    @Test
    void silentDestinationFailsTheSourceWithinThePeerTimeout() throws Exception {
        try (ServerSocket silent = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress());
             Workload workload = Workloads.parse("idle", 16L << 20, Fill.RANDOM, 5, false);
             GuestMemory memory = GuestMemory.anonymous(workload.memoryBytes())) {
            workload.fill(memory);
            long digest = PageDigest.scan(memory);
            DirtyBitmap log = new DirtyBitmap(memory.pageCount());
            WorkloadVm vm = new WorkloadVm(workload, memory, log, () -> PageGate.OPEN);
            Thread acceptor = new Thread(() -> {
                try {
                    silent.accept();
                } catch (Exception ignored) {
                    // the test ends either way
                }
            });
            acceptor.start();
            MigrationReport report = Migration.source(memory, log, vm)
                    .parameters(MigrationParameters.builder().peerTimeoutMillis(500).build())
                    .connect((InetSocketAddress) silent.getLocalSocketAddress()).start()
                    .result().get(30, TimeUnit.SECONDS);
            assertEquals(MigrationState.FAILED, report.outcome());
            assertEquals(SourceVmState.RUNNING, report.sourceVmState());
            // whichever notices first: the link's read timeout (not even a heartbeat came) or the wait for WELCOME
            assertTrue(report.error().contains("peer silent past the peer timeout")
                    || report.error().contains("no WELCOME from the destination within 500 ms"), report.error());
            assertEquals(digest, PageDigest.scan(memory), "the source's memory is untouched");
        }
    }

    private static void awaitBytesOnWire(OutgoingMigration migration) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        // 1 MiB on the wire: past the handshake and well into the bulk round
        while (migration.progress().transferredBytes() < (1 << 20) && !migration.state().isTerminal()
                && System.nanoTime() < deadline) {
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        }
        assertFalse(migration.state().isTerminal(), "still migrating when the destination is killed");
    }

    private static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\":(\"((?:[^\"\\\\]|\\\\.)*)\"|[^,}\\]]+)").matcher(json);
        if (!m.find()) {
            throw new AssertionError("no field " + name + " in " + json);
        }
        return m.group(2) != null ? m.group(2) : m.group(1);
    }
}
