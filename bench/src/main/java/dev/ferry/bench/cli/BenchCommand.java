package dev.ferry.bench.cli;

import dev.ferry.bench.report.BenchProcess;
import dev.ferry.bench.report.HtmlReport;
import dev.ferry.bench.report.Matrix;
import dev.ferry.bench.report.MatrixTable;
import dev.ferry.bench.workload.Fill;
import dev.ferry.bench.workload.Workload;
import dev.ferry.bench.workload.Workloads;
import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.FaultMechanism;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.JsonWriter;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.PageGate;
import dev.ferry.core.PostcopyReport;
import dev.ferry.engine.IncomingMigration;
import dev.ferry.engine.Migration;
import dev.ferry.engine.OutgoingMigration;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * {@code ferry bench} (both sides in this process, over a real loopback socket) and
 * {@code ferry source} (this process is the source of a {@code ferry dest}).
 */
final class BenchCommand {
    /** The bench flags {@code matrix} passes on unchanged to every run. */
    private static final List<String> MATRIX_COMMON = List.of("memory", "fill", "seed", "downtime-limit", "max-rounds",
            "time-limit", "compression", "xbzrle-cache-size", "zstd-level", "peer-timeout", "fault-mechanism",
            "postcopy-after-rounds", "recover-timeout");
    /** How long the guest runs on the destination after a hand-over, to show it goes on. */
    private static final long RUN_AFTER_MILLIS = 200;

    private final PrintStream out;
    private final PrintStream err;

    BenchCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    int bench(String[] args) throws Exception {
        Options o = Options.parse(args, 1, valued(), Set.of("trace-loop"));
        MigrationParameters params = MigrationFlags.parameters(o);
        Migration.warmUp();
        try (Guest guest = Guest.create(o)) {
            try (GuestMemory target = GuestMemory.anonymous(guest.memory.byteSize())) {
                DirtyBitmap targetLog = new DirtyBitmap(target.pageCount());
                WorkloadVm sourceVm = new WorkloadVm(guest.workload, guest.memory, guest.log, () -> PageGate.OPEN);
                java.util.concurrent.atomic.AtomicReference<IncomingMigration> incoming = new java.util.concurrent.atomic.AtomicReference<>();
                WorkloadVm targetVm = new WorkloadVm(guest.workload, target, targetLog, () -> incoming.get().pageGate());
                long guestStart = System.nanoTime();
                guest.workload.start(guest.memory, guest.log, PageGate.OPEN);
                MigrationReport source;
                MigrationReport destination;
                try (IncomingMigration in = Migration.destination(targetVm).memory(target)
                        .faultMechanism(faultMechanism(o)).start()) {
                    incoming.set(in);
                    OutgoingMigration migration = Migration.source(guest.memory, guest.log, sourceVm)
                            .parameters(params).connect(in.address()).listener(ProgressDisplay.forConsole()).start();
                    source = migration.result().get(maxWaitMillis(params), TimeUnit.MILLISECONDS);
                    destination = in.result().get(params.peerTimeoutMillis() + 5000, TimeUnit.MILLISECONDS);
                }
                long migrationEnd = System.nanoTime();
                long writesAtEnd = guest.workload.pagesWritten();
                source = source.withPostcopy(PostcopyReport.merge(source.postcopy(), destination.postcopy()));
                long writesAfter = guestRunsOn(guest.workload, targetVm);
                guest.workload.close();
                double loopback = LoopbackBaseline.bytesPerSecond(Math.max(source.bytesSent(), 1 << 20));
                JsonWriter json = new JsonWriter().beginObject();
                source.writeJsonMembers(json);
                json.name("workload").value(guest.workload.spec())
                        .name("fill").value(o.get("fill", "random"))
                        .name("downtimeLimitMs").value(params.downtimeLimitMillis())
                        .name("maxBandwidth").value(params.maxBandwidth())
                        .name("transport").value(dev.ferry.transport.Transports.nativeEpoll() ? "epoll" : "nio")
                        .name("destination").beginObject();
                destination.writeJsonMembers(json);
                json.endObject()
                        .name("guestWritesOnDestination").value(writesAfter);
                if (source.postcopy() != null && targetVm.resumed()) {
                    // the guest's own pace before the migration paused it, and on the destination
                    // while pages were still missing
                    long during = writesAtEnd - targetVm.resumedAtPagesWritten();
                    json.name("guestPagesPerSecBefore").value(sourceVm.pausedAtPagesWritten() * 1e9
                                    / (sourceVm.pausedAtNanos() - guestStart))
                            .name("guestWritesDuringPostcopy").value(during)
                            .name("guestPagesPerSecDuringPostcopy").value(during * 1e9
                                    / Math.max(1, migrationEnd - targetVm.resumedAtNanos()));
                }
                json
                        .name("wireBytesPerSec").value(source.bytesSent() * 1000.0 / source.totalTimeMs())
                        .name("loopbackBytesPerSec").value(loopback)
                        .name("throughputVsLoopback").value(source.bytesSent() * 1000.0 / source.totalTimeMs() / loopback)
                        .endObject();
                writeReports(o, json);
                summarize(source, destination, loopback);
                return source.succeeded() && destination.succeeded() ? 0 : 1;
            }
        }
    }

    int source(String[] args) throws Exception {
        Set<String> valued = valued();
        valued.add("connect");
        Options o = Options.parse(args, 1, valued, Set.of("trace-loop"));
        InetSocketAddress address = DestCommand.address("connect", o.get("connect"));
        MigrationParameters params = MigrationFlags.parameters(o);
        Migration.warmUp();
        try (Guest guest = Guest.create(o)) {
            WorkloadVm vm = new WorkloadVm(guest.workload, guest.memory, guest.log, () -> PageGate.OPEN);
            guest.workload.start(guest.memory, guest.log, PageGate.OPEN);
            OutgoingMigration migration = Migration.source(guest.memory, guest.log, vm)
                    .parameters(params).connect(address).listener(ProgressDisplay.forConsole()).start();
            MigrationReport report = migration.result().get(maxWaitMillis(params), TimeUnit.MILLISECONDS);
            long writesBefore = guest.workload.pagesWritten();
            if (vm.resumed()) {
                // the guest still runs here: show it
                Thread.sleep(RUN_AFTER_MILLIS);
            }
            long writesAfterFailure = guest.workload.pagesWritten() - writesBefore;
            guest.workload.close();
            JsonWriter json = new JsonWriter().beginObject();
            report.writeJsonMembers(json);
            json.name("workload").value(guest.workload.spec())
                    .name("downtimeLimitMs").value(params.downtimeLimitMillis())
                    .name("maxBandwidth").value(params.maxBandwidth())
                    .name("guestWritesOnSourceAfterRun").value(writesAfterFailure)
                    .endObject();
            writeReports(o, json);
            summarize(report, null, 0);
            return report.succeeded() ? 0 : 1;
        }
    }

    static FaultMechanism faultMechanism(Options o) {
        return switch (o.get("fault-mechanism", "auto")) {
            case "auto" -> FaultMechanism.AUTO;
            case "userfaultfd" -> FaultMechanism.USERFAULTFD;
            case "software" -> FaultMechanism.SOFTWARE;
            default -> throw new UsageException("--fault-mechanism takes auto, userfaultfd or software, got '"
                    + o.get("fault-mechanism") + "'");
        };
    }

    /**
     * {@code ferry matrix}: runs {@code ferry bench} for every combination of the listed modes,
     * stages, workloads and bandwidths, each in a JVM of its own, and prints the medians.
     */
    int matrix(String[] args) throws Exception {
        Set<String> valued = new HashSet<>(MATRIX_COMMON);
        valued.addAll(Set.of("modes", "stages", "workloads", "max-bandwidth", "repeat", "markdown", "runs-dir",
                "run-timeout"));
        Options o = Options.parse(args, 1, valued, Set.of("trace-loop"));
        List<String> common = new ArrayList<>();
        for (String name : MATRIX_COMMON) {
            if (o.has(name)) {
                common.addAll(List.of("--" + name, o.get(name)));
            }
        }
        if (o.has("trace-loop")) {
            common.add("--trace-loop");
        }
        List<Long> bandwidths = new ArrayList<>();
        for (String b : Matrix.list(o.get("max-bandwidth", "0"))) {
            try {
                bandwidths.add(Long.parseLong(b));
            } catch (NumberFormatException e) {
                throw new UsageException("--max-bandwidth takes whole numbers of bytes per second, got '" + b + "'");
            }
        }
        // "zero+lz4" is one stage set in a list of sets
        List<String> stages = Matrix.list(o.get("stages", "auto")).stream().map(x -> x.replace('+', ',')).toList();
        List<Matrix.Cell> cells = Matrix.cells(Matrix.list(o.get("modes", "precopy")), stages,
                Matrix.list(o.get("workloads", "idle")), bandwidths);
        for (Matrix.Cell cell : cells) {
            checkCell(cell, common);
        }
        int repeat = (int) o.getLong("repeat", 1);
        long timeout = o.getLong("run-timeout", 600);
        if (repeat < 1 || timeout < 1) {
            throw new UsageException("--repeat and --run-timeout take a positive number");
        }
        Path runs = o.has("runs-dir") ? Path.of(o.get("runs-dir")) : Files.createTempDirectory("ferry-matrix-");
        Files.createDirectories(runs);
        List<Matrix.Row> rows;
        try {
            rows = Matrix.run(cells, repeat, common, new BenchProcess(runs, timeout, Ferry.class.getName()), err);
        } finally {
            if (!o.has("runs-dir")) {
                try (var files = Files.list(runs)) {
                    for (Path f : files.toList()) {
                        Files.delete(f);
                    }
                }
                Files.delete(runs);
            }
        }
        out.print(MatrixTable.text(rows));
        if (o.has("markdown")) {
            String caption = String.format(Locale.ROOT, "Medians of %d run%s per row; verified counts the runs that "
                    + "completed verified, and only those count in the medians. Generated by `ferry %s`.%n%n",
                    repeat, repeat == 1 ? "" : "s", commandLine(args));
            write(o.get("markdown"), caption + MatrixTable.markdown(rows));
        }
        return rows.stream().allMatch(r -> r.verifiedCount() == r.attempts()) ? 0 : 1;
    }

    /** The matrix's command line as a reader would repeat it: without where this machine put the output. */
    private static String commandLine(String[] args) {
        List<String> kept = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--markdown") || args[i].equals("--runs-dir")) {
                i++;
            } else if (!args[i].startsWith("--markdown=") && !args[i].startsWith("--runs-dir=")) {
                kept.add(args[i]);
            }
        }
        return String.join(" ", kept);
    }

    /** Fails before the first run on a flag or workload one of the runs would refuse. */
    private static void checkCell(Matrix.Cell cell, List<String> common) {
        List<String> args = new ArrayList<>(cell.args());
        args.addAll(common);
        Options o = Options.parse(args.toArray(String[]::new), 0, valued(), Set.of("trace-loop"));
        MigrationFlags.parameters(o);
        try {
            Workloads.parse(cell.workload(), o.getSize("memory", 1L << 30), Fill.parse(o.get("fill", "random")),
                    o.getLong("seed", 1), false).close();
        } catch (IllegalArgumentException | java.io.UncheckedIOException e) {
            throw new UsageException(e.getMessage());
        }
    }

    private static Set<String> valued() {
        Set<String> valued = new HashSet<>(MigrationFlags.VALUED);
        valued.addAll(Set.of("workload", "memory", "fill", "seed", "json", "report", "fault-mechanism"));
        return valued;
    }

    /** Every wait is bounded: the round and time limits bound the rounds, the peer timeout each stall. */
    private static long maxWaitMillis(MigrationParameters params) {
        long limit = params.totalTimeLimitMillis() > 0 ? params.totalTimeLimitMillis() : 30 * 60_000L;
        return limit + 4 * params.peerTimeoutMillis();
    }

    /** Lets the guest run on the destination for a moment; returns the pages it wrote there. */
    private static long guestRunsOn(Workload workload, WorkloadVm destination) throws InterruptedException {
        if (!destination.resumed()) {
            return 0;
        }
        Thread.sleep(RUN_AFTER_MILLIS);
        return workload.pagesWritten() - destination.resumedAtPagesWritten();
    }

    /** The JSON report, and the HTML page built from that same text. */
    private static void writeReports(Options o, JsonWriter json) throws java.io.IOException {
        String text = json + "\n";
        if (o.has("json")) {
            write(o.get("json"), text);
        }
        if (o.has("report")) {
            write(o.get("report"), HtmlReport.render(text));
        }
    }

    private static void write(String file, String text) throws java.io.IOException {
        Path path = Path.of(file).toAbsolutePath();
        Files.createDirectories(path.getParent());
        Files.writeString(path, text);
    }

    private void summarize(MigrationReport s, MigrationReport d, double loopback) {
        out.printf(Locale.ROOT, "outcome            %s%s%n", s.outcome(), s.verified() ? " (verified)" : "");
        if (s.error() != null) {
            out.printf(Locale.ROOT, "error              %s%n", s.error());
        }
        out.printf(Locale.ROOT, "total time         %.1f ms%n", s.totalTimeMs());
        out.printf(Locale.ROOT, "downtime           %.2f ms (expected %.2f ms)%n", s.downtimeMs(), s.expectedDowntimeMs());
        out.printf(Locale.ROOT, "bytes sent         %,d (%,d pages, %s)%n", s.bytesSent(), s.pagesSent(), s.pagesByKind());
        out.printf(Locale.ROOT, "rounds             %d%n", s.rounds().size());
        out.printf(Locale.ROOT, "source VM          %s%n", s.sourceVmState());
        if (d != null) {
            out.printf(Locale.ROOT, "destination        %s, resumed=%s%s%n", d.outcome(), d.destinationResumed(),
                    d.error() != null ? ", " + d.error() : "");
        }
        if (loopback > 0) {
            double wire = s.bytesSent() * 1000.0 / s.totalTimeMs();
            out.printf(Locale.ROOT, "throughput         %.1f MB/s on the wire, raw loopback copy %.1f MB/s, ratio %.3f%n",
                    wire / 1e6, loopback / 1e6, wire / loopback);
        }
    }

    /** The source's guest: memory, dirty log and the workload that writes it. */
    private record Guest(Workload workload, GuestMemory memory, DirtyBitmap log) implements AutoCloseable {
        static Guest create(Options o) {
            String spec = o.get("workload", "idle");
            long memoryBytes = spec.startsWith("trace:") ? o.getSize("memory", 0) : o.getSize("memory", 1L << 30);
            Fill fill;
            try {
                fill = Fill.valueOf(o.get("fill", "random").toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new UsageException("--fill takes random, text or mixed, got '" + o.get("fill") + "'");
            }
            Workload workload;
            try {
                workload = Workloads.parse(spec, memoryBytes, fill, o.getLong("seed", 1), o.has("trace-loop"));
            } catch (IllegalArgumentException e) {
                throw new UsageException(e.getMessage());
            }
            GuestMemory memory = GuestMemory.anonymous(workload.memoryBytes());
            workload.fill(memory);
            return new Guest(workload, memory, new DirtyBitmap(memory.pageCount()));
        }

        @Override
        public void close() {
            workload.close();
            memory.close();
        }
    }
}
