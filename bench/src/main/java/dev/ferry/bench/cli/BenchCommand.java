package dev.ferry.bench.cli;

import dev.ferry.bench.cli.Options.Option;
import dev.ferry.bench.report.BenchProcess;
import dev.ferry.bench.report.HtmlReport;
import dev.ferry.bench.report.Matrix;
import dev.ferry.bench.report.MatrixTable;
import dev.ferry.bench.workload.Fill;
import dev.ferry.bench.workload.Workload;
import dev.ferry.bench.workload.Workloads;
import dev.ferry.core.Configuration;
import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.JsonWriter;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.PageGate;
import dev.ferry.core.PostcopyReport;
import dev.ferry.engine.DestinationBuilder;
import dev.ferry.engine.IncomingMigration;
import dev.ferry.engine.Migration;
import dev.ferry.engine.OutgoingMigration;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/**
 * {@code ferry bench} (both sides in this process, over a real loopback socket) and
 * {@code ferry source} (this process is the source of a {@code ferry dest}).
 */
final class BenchCommand {
    private static final Option WORKLOAD = Option.valued("workload", "SPEC",
            "idle | uniform:MBPS | hotset:FRACTION:MBPS | zipf:S:MBPS | sequential:MBPS | trace:PATH[:SPEED]", "idle");
    private static final Option MEMORY = Option.valued("memory", "SIZE", "guest RAM, e.g. 512m, 1g (a trace has its own)",
            "1g");
    private static final Option FILL = Option.valued("fill", "random|text|mixed", "initial contents of synthetic workloads",
            "random");
    private static final Option TRACE_LOOP = Option.flag("trace-loop", "replay the trace's epochs again after the last");
    private static final Option SEED = Option.valued("seed", "N", "seed of the workload's randomness", "1");
    private static final Option JSON = Option.valued("json", "FILE", "write the report as JSON", null);
    private static final Option REPORT = Option.valued("report", "FILE.html",
            "write the report as a self-contained HTML page with charts", null);
    private static final Option CONNECT = Option.valued("connect", "HOST:PORT", "source: the destination's address (required)",
            null);
    private static final Option TLS = Option.valued("tls", "DIR", "both sides over mutual TLS with the"
            + " certificates scripts/tls-ca.sh DIR made (source.pem for the source, dest.pem for the destination, which"
            + " allows ferry-source)", null);
    /** The options of bench and source that are not settings. */
    static final List<Option> OWN = List.of(WORKLOAD, MEMORY, FILL, TRACE_LOOP, SEED, JSON, REPORT, CONNECT);

    /** bench runs both sides: it takes the settings of both. */
    /** The options only bench takes. */
    static final List<Option> BENCH_OWN = List.of(TLS);
    static final List<Option> BENCH = union(OWN.stream().filter(o -> o != CONNECT), BENCH_OWN.stream(),
            MigrationFlags.options(MigrationFlags.SOURCE).stream(),
            MigrationFlags.options(MigrationFlags.DESTINATION).stream());
    /** source runs the source: it takes the source's settings and where the destination is. */
    static final List<Option> SOURCE = union(OWN.stream(), MigrationFlags.options(MigrationFlags.SOURCE).stream(),
            QemuTarget.OPTIONS.stream());

    /** The options a matrix's axes vary, and the reports its runner asks for: those are not passed on. */
    private static final Set<String> PER_RUN = Set.of(WORKLOAD.name(), Configuration.MODE.name(),
            Configuration.STAGES.name(), Configuration.MAX_BANDWIDTH.name(), Configuration.CHANNELS.name(), JSON.name(),
            REPORT.name());
    /** The bench options matrix passes on unchanged to every run. */
    static final List<Option> MATRIX_COMMON = BENCH.stream().filter(o -> !PER_RUN.contains(o.name())).toList();
    private static final Option MODES = Option.valued("modes", "LIST", "modes to run",
            Configuration.MODE.format(Configuration.MODE_DEFAULT));
    private static final Option STAGE_SETS = Option.valued("stages", "LIST",
            "stage sets, joining a subset with +: none,auto,zero+lz4", "auto");
    private static final Option WORKLOADS = Option.valued("workloads", "LIST", "workload specs", WORKLOAD.fallback());
    private static final Option BANDWIDTHS = Option.valued("max-bandwidth", "LIST", "bytes per second, 0 = unlimited",
            Configuration.MAX_BANDWIDTH.format(Configuration.MAX_BANDWIDTH_DEFAULT));
    private static final Option CHANNEL_COUNTS = Option.valued("channels", "LIST", "page channel counts",
            Configuration.CHANNELS.format(Configuration.CHANNELS_DEFAULT));
    private static final Option REPEAT = Option.valued("repeat", "N", "runs per combination; the table shows medians",
            "1");
    private static final Option MARKDOWN = Option.valued("markdown", "FILE", "also write the table as Markdown", null);
    private static final Option RUNS_DIR = Option.valued("runs-dir", "DIR",
            "keep each run's JSON and output there (default: discarded)", null);
    private static final Option RUN_TIMEOUT = Option.valued("run-timeout", "S", "kill a run still going after S seconds",
            "600");
    /** The options of matrix that are not passed on. */
    static final List<Option> MATRIX_OWN = List.of(MODES, STAGE_SETS, WORKLOADS, BANDWIDTHS, CHANNEL_COUNTS, REPEAT,
            MARKDOWN, RUNS_DIR, RUN_TIMEOUT);
    static final List<Option> MATRIX = union(MATRIX_OWN.stream(), MATRIX_COMMON.stream());

    /** How long the guest runs on the destination after a hand-over, to show it goes on. */
    private static final long RUN_AFTER_MILLIS = 200;

    private final PrintStream out;
    private final PrintStream err;

    BenchCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** The two sides bench runs, as its options set them up: the destination's settings wait for its builder. */
    record Sides(MigrationParameters source, UnaryOperator<DestinationBuilder> destination) {
    }

    static Sides sides(Options o) {
        Sides given = new Sides(MigrationFlags.parameters(o), MigrationFlags.destination(o, MigrationFlags.DESTINATION));
        if (!o.has(TLS)) {
            return given;
        }
        Path dir = Path.of(o.get(TLS));
        for (String file : List.of("ca.pem", "source.pem", "source-key.pem", "dest.pem", "dest-key.pem")) {
            if (!Files.isReadable(dir.resolve(file))) {
                throw new UsageException("--" + TLS.name() + " " + dir + " has no " + file + ": make it with scripts/tls-ca.sh "
                        + dir);
            }
        }
        MigrationParameters source = given.source().toBuilder()
                .tls(dir.resolve("source.pem"), dir.resolve("source-key.pem"), dir.resolve("ca.pem")).build();
        UnaryOperator<DestinationBuilder> destination = b -> given.destination().apply(b
                .tls(dir.resolve("dest.pem"), dir.resolve("dest-key.pem"), dir.resolve("ca.pem"))
                .tlsAllow(List.of("ferry-source")));
        return new Sides(source, destination);
    }

    int bench(String[] args) throws Exception {
        Options o = Options.parse(args, 1, BENCH);
        Sides sides = sides(o);
        MigrationParameters params = sides.source();
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
                java.util.Optional<dev.ferry.core.TlsProvider> tls;
                try (IncomingMigration in = sides.destination().apply(Migration.destination(targetVm)).memory(target)
                        .start()) {
                    incoming.set(in);
                    tls = in.tlsProvider();
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
                source = failedIfWorkloadDid(source, guest.workload);
                double loopback = LoopbackBaseline.bytesPerSecond(Math.max(source.bytesSent(), 1 << 20));
                JsonWriter json = new JsonWriter().beginObject();
                source.writeJsonMembers(json);
                json.name("workload").value(guest.workload.spec())
                        .name("fill").value(o.get(FILL))
                        .name("downtimeLimitMs").value(params.downtimeLimitMillis())
                        .name("maxBandwidth").value(params.maxBandwidth())
                        .name("channels").value(params.channels())
                        .name("transport").value(dev.ferry.transport.Transports.nativeEpoll() ? "epoll" : "nio")
                        .name("tls").value(tls.map(p -> p.name().toLowerCase(Locale.ROOT)).orElse("none"))
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
                out.printf(Locale.ROOT, "tls                %s%n", tls.map(p -> p.name().toLowerCase(Locale.ROOT) + ", mutual")
                        .orElse("none"));
                return source.succeeded() && destination.succeeded() ? 0 : 1;
            }
        }
    }

    int source(String[] args) throws Exception {
        Options o = Options.parse(args, 1, SOURCE);
        InetSocketAddress address = connect(o);
        MigrationParameters params = MigrationFlags.parameters(o);
        QemuTarget qemu = QemuTarget.of(o);
        if (qemu.given()) {
            QemuTarget.requirePrecopy(params);
        }
        Migration.warmUp();
        if (qemu.given()) {
            try (QemuTarget.Attached guest = qemu.attach(dev.ferry.qemu.QemuVm.Side.SOURCE, out)) {
                OutgoingMigration migration = Migration.source(guest.memory(), guest.log(), guest.vm())
                        .parameters(params).connect(address).listener(ProgressDisplay.forConsole()).start();
                MigrationReport report = migration.result().get(maxWaitMillis(params), TimeUnit.MILLISECONDS);
                JsonWriter json = new JsonWriter().beginObject();
                report.writeJsonMembers(json);
                guest.writeJson(json);
                writeReports(o, json.endObject());
                summarize(report, null, 0);
                return report.succeeded() ? 0 : 1;
            }
        }
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
            report = failedIfWorkloadDid(report, guest.workload);
            JsonWriter json = new JsonWriter().beginObject();
            report.writeJsonMembers(json);
            json.name("workload").value(guest.workload.spec())
                    .name("downtimeLimitMs").value(params.downtimeLimitMillis())
                    .name("maxBandwidth").value(params.maxBandwidth())
                    .name("channels").value(params.channels())
                    .name("guestWritesOnSourceAfterRun").value(writesAfterFailure)
                    .endObject();
            writeReports(o, json);
            summarize(report, null, 0);
            return report.succeeded() ? 0 : 1;
        }
    }

    /** The destination's address, parsed as the one a destination listens on. */
    private static InetSocketAddress connect(Options o) {
        String value = o.get(CONNECT);
        if (value == null) {
            throw new UsageException("--" + CONNECT.name() + " " + CONNECT.hint() + " is required");
        }
        try {
            return Configuration.LISTEN.parse(value);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--" + CONNECT.name() + " takes " + CONNECT.hint() + ", got '" + value + "'");
        }
    }

    /** The options of {@code lists} in order, each once: a setting both sides take is one option. */
    @SafeVarargs
    private static List<Option> union(Stream<Option>... lists) {
        Map<String, Option> byName = new LinkedHashMap<>();
        Stream.of(lists).flatMap(list -> list).forEach(option -> byName.putIfAbsent(option.name(), option));
        return List.copyOf(byName.values());
    }

    /**
     * {@code ferry matrix}: runs {@code ferry bench} for every combination of the listed modes,
     * stages, workloads and bandwidths, each in a JVM of its own, and prints the medians.
     */
    int matrix(String[] args) throws Exception {
        Options o = Options.parse(args, 1, MATRIX);
        List<String> common = passedOn(o);
        List<Long> bandwidths = new ArrayList<>();
        for (String b : Matrix.list(o.get(BANDWIDTHS))) {
            bandwidths.add(Options.parse(Configuration.MAX_BANDWIDTH, b));
        }
        List<Integer> channels = new ArrayList<>();
        for (String c : Matrix.list(o.get(CHANNEL_COUNTS))) {
            channels.add(Options.parse(Configuration.CHANNELS, c));
        }
        // "zero+lz4" is one stage set in a list of sets
        List<String> stages = Matrix.list(o.get(STAGE_SETS)).stream().map(x -> x.replace('+', ',')).toList();
        List<Matrix.Cell> cells = Matrix.cells(Matrix.list(o.get(MODES)), stages, Matrix.list(o.get(WORKLOADS)),
                bandwidths, channels);
        for (Matrix.Cell cell : cells) {
            checkCell(cell, common);
        }
        int repeat = (int) o.getLong(REPEAT);
        long timeout = o.getLong(RUN_TIMEOUT);
        if (repeat < 1 || timeout < 1) {
            throw new UsageException("--" + REPEAT.name() + " and --" + RUN_TIMEOUT.name() + " take a positive number");
        }
        boolean keep = o.has(RUNS_DIR);
        Path runs = keep ? Path.of(o.get(RUNS_DIR)) : Files.createTempDirectory("ferry-matrix-");
        Files.createDirectories(runs);
        List<Matrix.Row> rows;
        try {
            rows = Matrix.run(cells, repeat, common, new BenchProcess(runs, timeout, Ferry.class.getName()), err);
        } finally {
            if (!keep) {
                try (var files = Files.list(runs)) {
                    for (Path f : files.toList()) {
                        Files.delete(f);
                    }
                }
                Files.delete(runs);
            }
        }
        out.print(MatrixTable.text(rows));
        if (o.has(MARKDOWN)) {
            String caption = String.format(Locale.ROOT, "Medians of %d run%s per row; verified counts the runs that "
                    + "completed verified, and only those count in the medians. Generated by `ferry %s`.%n%n",
                    repeat, repeat == 1 ? "" : "s", commandLine(args));
            write(o.get(MARKDOWN), caption + MatrixTable.markdown(rows));
        }
        return rows.stream().allMatch(r -> r.verifiedCount() == r.attempts()) ? 0 : 1;
    }

    /** The bench options of {@code o} as every run of a matrix is given them. */
    static List<String> passedOn(Options o) {
        List<String> args = new ArrayList<>();
        for (Option option : MATRIX_COMMON) {
            if (o.has(option)) {
                args.add("--" + option.name());
                if (!option.isFlag()) {
                    args.add(o.get(option));
                }
            }
        }
        return args;
    }

    /** The matrix's command line as a reader would repeat it: without where this machine put the output. */
    private static String commandLine(String[] args) {
        Set<String> outputs = Set.of("--" + MARKDOWN.name(), "--" + RUNS_DIR.name());
        List<String> kept = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (!outputs.contains(eq < 0 ? args[i] : args[i].substring(0, eq))) {
                kept.add(args[i]);
            } else if (eq < 0) {
                i++;
            }
        }
        return String.join(" ", kept);
    }

    /** Fails before the first run on a flag or workload one of the runs would refuse. */
    private static void checkCell(Matrix.Cell cell, List<String> common) {
        List<String> args = new ArrayList<>(cell.args());
        args.addAll(common);
        Options o = Options.parse(args.toArray(String[]::new), 0, BENCH);
        sides(o);
        try {
            Workloads.parse(cell.workload(), o.getSize(MEMORY), fill(o), o.getLong(SEED), false).close();
        } catch (IllegalArgumentException | java.io.UncheckedIOException e) {
            throw new UsageException(e.getMessage());
        }
    }

    private static Fill fill(Options o) {
        try {
            return Fill.parse(o.get(FILL));
        } catch (IllegalArgumentException e) {
            throw new UsageException("--" + FILL.name() + ": " + e.getMessage());
        }
    }

    /** Every wait is bounded: the round and time limits bound the rounds, the peer timeout each stall. */
    private static long maxWaitMillis(MigrationParameters params) {
        long limit = params.totalTimeLimitMillis() > 0 ? params.totalTimeLimitMillis() : 30 * 60_000L;
        return limit + 4 * params.peerTimeoutMillis();
    }

    /**
     * {@code report}, or, when the workload broke during the run (a malformed trace found while
     * replaying it or after, see TraceWorkload), the report marked failed with the workload's
     * message, which also goes to stderr: the guest did not do what the workload says, so the
     * run's figures are not the workload's. Call after the workload was closed.
     */
    private MigrationReport failedIfWorkloadDid(MigrationReport report, Workload workload) {
        Throwable failure = workload.failure();
        if (failure == null) {
            return report;
        }
        String why = "workload " + workload.spec() + " failed: "
                + (failure.getMessage() != null ? failure.getMessage() : failure.toString());
        err.println("ferry: " + why);
        return report.failedBy(why);
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
        if (o.has(JSON)) {
            write(o.get(JSON), text);
        }
        if (o.has(REPORT)) {
            write(o.get(REPORT), HtmlReport.render(text));
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
            Fill fill = fill(o);
            Workload workload;
            try {
                workload = Workloads.parse(o.get(WORKLOAD), o.getSize(MEMORY), fill, o.getLong(SEED),
                        o.has(TRACE_LOOP));
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
