import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.engine.IncomingMigration;
import dev.ferry.engine.Migration;
import dev.ferry.engine.OutgoingMigration;
import dev.ferry.qemu.BootBlockGuest;
import dev.ferry.qemu.ContentHashLog;
import dev.ferry.qemu.QemuVm;
import dev.ferry.qemu.Qmp;
import dev.ferry.qemu.SoftDirty;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The boot-block guest migrated, in one run, by Ferry and by QEMU itself (tcp, bandwidth cap
 * lifted; then multifd), each between two fresh QEMUs on this machine; then the scanning dirty
 * log's cost per round at 256 MiB and 1 GiB and what it does to the guest's pace. Prints Markdown.
 * Run by scripts/qemu-compare.sh (java -cp bench/target/ferry.jar scripts/QemuCompare.java).
 */
public class QemuCompare {
    static final long MIB = 1 << 20;
    static final long TIMEOUT = 30_000;
    static final long MIGRATION_TIMEOUT = 300_000;
    static final long PACE_WINDOW_MS = 2_000;
    static Path dir;
    static Path image;

    record Row(String method, String verdict, double totalMs, double downtimeMs, long wireBytes, double paceBefore,
            double paceDuring, int steps) {
    }

    public static void main(String[] args) throws Exception {
        long ram = (args.length > 0 ? Long.parseLong(args[0]) : 256) * MIB;
        dir = Files.createTempDirectory("ferry-qemu-compare");
        image = BootBlockGuest.image(dir);
        Migration.warmUp();
        List<Row> rows = new ArrayList<>();
        rows.add(ferry(ram));
        rows.add(qemu(ram, false));
        rows.add(qemu(ram, true));
        System.out.printf(Locale.ROOT, "%n| method (%d MiB guest) | oracle | total ms | downtime ms | bytes on the wire | guest"
                + " passes/s before | during |%n|---|---|---|---|---|---|---|%n", ram / MIB);
        for (Row r : rows) {
            System.out.printf(Locale.ROOT, "| %s | %s | %.0f | %.1f | %,d | %.0f | %.0f |%n", r.method, r.verdict,
                    r.totalMs, r.downtimeMs, r.wireBytes, r.paceBefore, r.paceDuring);
        }
        System.out.printf(Locale.ROOT, "%nsoft-dirty on this kernel: %s; the dirty log that ran: content-hash scan%n",
                SoftDirty.available() ? "available" : "not available");
        System.out.printf(Locale.ROOT, "%n| guest RAM | scan per round, ms (median of 5) | min | max | guest passes/s idle |"
                + " during back-to-back scans |%n|---|---|---|---|---|---|%n");
        for (long size : new long[] {256 * MIB, 1024 * MIB}) {
            scan(size);
        }
    }

    /** Ferry carries the RAM, QEMU the devices (x-ignore-shared). */
    static Row ferry(long ram) throws Exception {
        try (BootBlockGuest src = BootBlockGuest.start(dir, image, "ferry-src", ram, false, TIMEOUT);
                BootBlockGuest dst = BootBlockGuest.start(dir, image, "ferry-dst", ram, true, TIMEOUT);
                QemuVm from = QemuVm.attach(QemuVm.Side.SOURCE, src.qmpSocket(), src.ramFile(), TIMEOUT);
                QemuVm to = QemuVm.attach(QemuVm.Side.DESTINATION, dst.qmpSocket(), dst.ramFile(), TIMEOUT);
                GuestMemory srcRam = from.mapRam();
                GuestMemory dstRam = to.mapRam();
                ContentHashLog log = new ContentHashLog(srcRam, NanoClock.SYSTEM)) {
            double before = pace(src);
            long chars = src.serialBytes();
            MigrationReport report;
            try (IncomingMigration in = Migration.destination(to).memory(dstRam)
                    .listen(new InetSocketAddress("127.0.0.1", 0)).start()) {
                OutgoingMigration out = Migration.source(srcRam, log, from).parameters(MigrationParameters.builder()
                                .convergence(dev.ferry.core.ConvergencePolicy.FORCE).build())
                        .connect(in.address()).start();
                report = out.result().get(MIGRATION_TIMEOUT, TimeUnit.MILLISECONDS);
                in.result().get(MIGRATION_TIMEOUT, TimeUnit.MILLISECONDS);
            }
            double during = (src.serialBytes() - chars) * 1000.0 / Math.max(1, report.totalTimeMs() - report.downtimeMs());
            System.out.println("ferry: " + report.outcome() + " verified=" + report.verified() + " rounds="
                    + report.rounds().size() + " pages=" + report.pagesByKind() + (report.error() != null ? " " + report.error() : ""));
            int steps = -1;
            String verdict = report.succeeded() ? "completed" : "FAILED: " + report.error();
            if (report.succeeded()) {
                long there = dst.serialBytes();
                boolean runs = dst.awaitSerial(there, 50, TIMEOUT);
                to.pause();
                steps = BootBlockGuest.steps(dstRam.segment());
                verdict = verdict(runs, steps);
            }
            return new Row("Ferry (2 channels, pre-copy)", verdict, report.totalTimeMs(), report.downtimeMs(),
                    report.bytesSent(), before, during, steps);
        }
    }

    /** QEMU's own migration over tcp, the bandwidth cap lifted, downtime limit 300 ms as Ferry's. */
    static Row qemu(long ram, boolean multifd) throws Exception {
        String name = multifd ? "multifd" : "qemu";
        try (BootBlockGuest src = BootBlockGuest.start(dir, image, name + "-src", ram, false, TIMEOUT);
                BootBlockGuest dst = BootBlockGuest.start(dir, image, name + "-dst", ram, true, TIMEOUT);
                Qmp s = Qmp.connect(src.qmpSocket(), MIGRATION_TIMEOUT);
                Qmp d = Qmp.connect(dst.qmpSocket(), MIGRATION_TIMEOUT)) {
            int port;
            try (ServerSocket free = new ServerSocket(0)) {
                port = free.getLocalPort();
            }
            List<Map<String, Object>> caps = new ArrayList<>(List.of(Map.of("capability", "events", "state", true)));
            if (multifd) {
                caps.add(Map.of("capability", "multifd", "state", true));
            }
            for (Qmp q : List.of(s, d)) {
                q.execute("migrate-set-capabilities", Map.of("capabilities", caps));
                if (multifd) {
                    q.execute("migrate-set-parameters", Map.of("multifd-channels", 2));
                }
            }
            s.execute("migrate-set-parameters", Map.of("max-bandwidth", Long.MAX_VALUE >> 8, "downtime-limit", 300));
            d.execute("migrate-incoming", Map.of("uri", "tcp:127.0.0.1:" + port));
            double before = pace(src);
            long chars = src.serialBytes();
            s.execute("migrate", Map.of("uri", "tcp:127.0.0.1:" + port));
            JsonNode end = s.awaitEvent("MIGRATION", e -> Arrays.asList("completed", "failed", "cancelled")
                    .contains(e.path("status").asText()), MIGRATION_TIMEOUT);
            // QEMU announces completed before it computed the times: ask until they are there (bounded)
            JsonNode info = s.execute("query-migrate");
            for (int i = 0; i < 100 && info.path("total-time").asLong() == 0; i++) {
                Thread.sleep(10);
                info = s.execute("query-migrate");
            }
            System.out.println(name + ": " + info);
            double total = info.path("total-time").asDouble();
            double downtime = info.path("downtime").asDouble();
            double during = (src.serialBytes() - chars) * 1000.0 / Math.max(1, total - downtime);
            int steps = -1;
            String verdict = end.path("status").asText();
            if (verdict.equals("completed")) {
                d.awaitEvent("RESUME", e -> true, TIMEOUT);
                long there = dst.serialBytes();
                boolean runs = dst.awaitSerial(there, 50, TIMEOUT);
                d.execute("stop");
                try (GuestMemory dstRam = GuestMemory.mapFile(dst.ramFile(), ram)) {
                    steps = BootBlockGuest.steps(dstRam.segment());
                }
                verdict = verdict(runs, steps);
            }
            return new Row(multifd ? "QEMU multifd (2 channels)" : "QEMU tcp", verdict, total, downtime,
                    info.path("ram").path("transferred").asLong(), before, during, steps);
        }
    }

    /** The scanning log's sync on a running guest of {@code size}, and the guest's pace meanwhile. */
    static void scan(long size) throws Exception {
        try (BootBlockGuest guest = BootBlockGuest.start(dir, image, "scan-" + (size / MIB), size, false, TIMEOUT);
                QemuVm vm = QemuVm.attach(QemuVm.Side.SOURCE, guest.qmpSocket(), guest.ramFile(), TIMEOUT);
                GuestMemory ram = vm.mapRam();
                ContentHashLog log = new ContentHashLog(ram, NanoClock.SYSTEM)) {
            guest.awaitSerial(0, 20, TIMEOUT);
            double idle = pace(guest);
            PageBitmap into = new PageBitmap(ram.pageCount());
            log.sync(into);
            double[] ms = new double[5];
            long chars = guest.serialBytes();
            long began = System.nanoTime();
            for (int i = 0; i < ms.length; i++) {
                log.sync(into);
                ms[i] = log.lastScanNanos() / 1e6;
            }
            double during = (guest.serialBytes() - chars) * 1e9 / (System.nanoTime() - began);
            double[] sorted = ms.clone();
            Arrays.sort(sorted);
            System.out.printf(Locale.ROOT, "| %d MiB | %.1f | %.1f | %.1f | %.0f | %.0f |%n", size / MIB, sorted[2],
                    sorted[0], sorted[4], idle, during);
        }
    }

    /** Serial characters per second (one per pass) over a window of the running guest. */
    static double pace(BootBlockGuest guest) throws InterruptedException {
        guest.awaitSerial(0, 20, TIMEOUT);
        long chars = guest.serialBytes();
        long began = System.nanoTime();
        Thread.sleep(PACE_WINDOW_MS); // a measurement window, not a synchronisation
        return (guest.serialBytes() - chars) * 1e9 / (System.nanoTime() - began);
    }

    static String verdict(boolean runs, int steps) {
        return (runs && steps <= 1 ? "pass" : "FAIL") + " (runs on: " + runs + ", steps " + steps + ")";
    }
}
