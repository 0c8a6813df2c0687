package dev.ferry.bench.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
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
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.PageGate;
import dev.ferry.core.PostcopyReport;
import dev.ferry.core.ReportJson;
import dev.ferry.core.Setting;
import dev.ferry.engine.DestinationBuilder;
import dev.ferry.engine.Gang;
import dev.ferry.engine.IncomingMigration;
import dev.ferry.engine.Migration;
import dev.ferry.engine.OutgoingMigration;
import dev.ferry.transport.Transports;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
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
    private static final CliOption WORKLOAD = CliOption.text("workload", "SPEC",
            "idle | uniform:MBPS | hotset:FRACTION:MBPS | zipf:S:MBPS | sequential:MBPS | trace:PATH[:SPEED]", "idle");
    private static final CliOption MEMORY = CliOption.valued("memory", "SIZE",
            "guest RAM, e.g. 512m, 1g (a trace has its own)", "1g", Setting::parseSize);
    private static final CliOption FILL = CliOption.valued("fill", "random|text|mixed",
            "initial contents of synthetic workloads", "random", Fill::parse);
    private static final CliOption TRACE_LOOP = CliOption.flag("trace-loop", "replay the trace's epochs again after the last");
    private static final CliOption SEED = CliOption.valued("seed", "N", "seed of the workload's randomness", "1",
            Long::parseLong);
    private static final CliOption JSON = CliOption.valued("json", "FILE", "write the report as JSON", null,
            OutputPath::file);
    private static final CliOption REPORT = CliOption.valued("report", "FILE.html",
            "write the report as a self-contained HTML page with charts", null, OutputPath::file);
    private static final CliOption CONNECT = CliOption.repeated("connect", "HOST:PORT",
            "the destination's address (required); a gang's --vm guests all go to the one a ferry dest --gang N prints,"
            + " sharing its connections");
    private static final CliOption VM = CliOption.repeated("vm", "SPEC", "one guest of a gang migrated together"
            + " (a --workload spec; repeat for each guest): they share max-bandwidth and, with dedup, one content index,"
            + " so a page another guest already sent crosses as a reference to its copy; each hands over when it converges");
    private static final CliOption WITHIN_GUESTS = CliOption.flag("within-guests", "with --vm and dedup, each guest"
            + " refers only to its own pages, as if it migrated alone (the gang still shares max-bandwidth)");
    private static final CliOption TLS = CliOption.text("tls", "DIR", "both sides over mutual TLS with the"
            + " certificates scripts/tls-ca.sh DIR made (source.pem for the source, dest.pem for the destination, which"
            + " allows ferry-source)", null);
    /** The options of bench and source that are not settings. */
    private static final List<CliOption> OWN = union(Stream.of(WORKLOAD, MEMORY, FILL, TRACE_LOOP, SEED, JSON, REPORT),
            MigrationFlags.settingOptions(MigrationFlags.OUTPUTS).stream());
    /** The options of bench that are not settings. */
    private static final List<CliOption> BENCH_OWN = union(OWN.stream(), Stream.of(VM, WITHIN_GUESTS, TLS));
    /** Exit status of a migration that completed verified but paused the guest past its downtime limit. */
    static final int EXIT_DOWNTIME_EXCEEDED = 3;

    /** bench runs both sides: it takes the settings of both. */
    static final List<CliOption> BENCH = union(BENCH_OWN.stream(),
            MigrationFlags.options(MigrationFlags.SOURCE).stream(),
            MigrationFlags.options(MigrationFlags.DESTINATION).stream(),
            MigrationFlags.settingOptions(MigrationFlags.unbound()).stream());
    /** source runs the source: it takes the source's settings and where the destination is. */
    static final List<CliOption> SOURCE = union(Stream.of(CONNECT, VM, WITHIN_GUESTS), OWN.stream(),
            MigrationFlags.options(MigrationFlags.SOURCE).stream(), QemuTarget.OPTIONS.stream(),
            MigrationFlags.settingOptions(MigrationFlags.unbound()).stream());

    /** The options a matrix's axes vary, and the reports its runner asks for: those are not passed on. */
    private static final Set<String> PER_RUN = Set.of(WORKLOAD.name(), Configuration.MODE.name(),
            Configuration.STAGES.name(), Configuration.MAX_BANDWIDTH.name(), Configuration.CHANNELS.name(), JSON.name(),
            REPORT.name(), Configuration.PROGRESS.name(), Configuration.PROGRESS_FILE.name(),
            Configuration.METRICS_PORT.name());
    /** The bench options matrix passes on unchanged to every run. */
    static final List<CliOption> MATRIX_COMMON = BENCH.stream().filter(o -> !PER_RUN.contains(o.name())).toList();
    private static final CliOption MODES = CliOption.text("modes", "LIST", "modes to run",
            Configuration.MODE.format(Configuration.MODE_DEFAULT));
    private static final CliOption STAGE_SETS = CliOption.text("stages", "LIST",
            "stage sets, joining a subset with +: none,auto,zero+lz4", "auto");
    private static final CliOption WORKLOADS = CliOption.text("workloads", "LIST", "workload specs; gang:A+B+C is a gang"
            + " of those guests (ferry bench --vm A --vm B --vm C), gang-within:A+B+C the same with --within-guests",
            WORKLOAD.fallback());
    private static final CliOption BANDWIDTHS = CliOption.valued("max-bandwidth", "LIST", "rates, 0 = unlimited",
            Configuration.MAX_BANDWIDTH.format(Configuration.MAX_BANDWIDTH_DEFAULT),
            text -> each(text, Configuration.MAX_BANDWIDTH));
    private static final CliOption CHANNEL_COUNTS = CliOption.valued("channels", "LIST", "page channel counts",
            Configuration.CHANNELS.format(Configuration.CHANNELS_DEFAULT), text -> each(text, Configuration.CHANNELS));
    private static final CliOption REPEAT = CliOption.valued("repeat", "N", "runs per combination; the table shows medians",
            "1", text -> positive(text));
    private static final CliOption MARKDOWN = CliOption.valued("markdown", "FILE", "also write the table as Markdown", null,
            OutputPath::file);
    private static final CliOption RUNS_DIR = CliOption.valued("runs-dir", "DIR",
            "keep each run's JSON and output there (default: discarded)", null, OutputPath::directory);
    private static final CliOption RUN_TIMEOUT = CliOption.valued("run-timeout", "S",
            "kill a run still going after S seconds", "600", text -> positive(text));
    /** The options of matrix that are not passed on. */
    static final List<CliOption> MATRIX_OWN = List.of(MODES, STAGE_SETS, WORKLOADS, BANDWIDTHS, CHANNEL_COUNTS, REPEAT,
            MARKDOWN, RUNS_DIR, RUN_TIMEOUT);
    static final List<CliOption> MATRIX = union(MATRIX_OWN.stream(), MATRIX_COMMON.stream());

    /** bench's help: its own options, then the settings by the side that takes them. */
    static List<Ferry.Section> benchSections() {
        return settingSections(new Ferry.Section("Options", BENCH_OWN), true, true);
    }

    static List<Ferry.Section> sourceSections() {
        return withQemu(settingSections(new Ferry.Section("Options", union(Stream.of(CONNECT, VM, WITHIN_GUESTS),
                OWN.stream())), true, false));
    }

    /** {@code sections} with the QEMU options after the command's own. */
    static List<Ferry.Section> withQemu(List<Ferry.Section> sections) {
        List<Ferry.Section> all = new ArrayList<>(sections);
        all.add(1, new Ferry.Section("A QEMU guest (pre-copy only)", QemuTarget.OPTIONS));
        return all;
    }

    static List<Ferry.Section> matrixSections() {
        return List.of(new Ferry.Section("Options (lists are comma-separated)", MATRIX_OWN),
                new Ferry.Section("Passed on to every run (as bench takes them)", MATRIX_COMMON));
    }

    /** {@code own}, then the settings of the source and of the destination, as asked, and the unbound ones. */
    static List<Ferry.Section> settingSections(Ferry.Section own, boolean source, boolean destination) {
        List<CliOption> sourceSide = MigrationFlags.options(MigrationFlags.SOURCE);
        List<CliOption> destinationSide = MigrationFlags.options(MigrationFlags.DESTINATION);
        List<CliOption> both = sourceSide.stream().filter(destinationSide::contains).toList();
        List<Ferry.Section> sections = new ArrayList<>(List.of(own));
        if (source) {
            sections.add(new Ferry.Section(destination ? "Source settings" : "Settings",
                    sourceSide.stream().filter(o -> !destination || !both.contains(o)).toList()));
        }
        if (source && destination) {
            sections.add(new Ferry.Section("Settings of both sides", both));
        }
        if (destination) {
            sections.add(new Ferry.Section(source ? "Destination settings" : "Settings",
                    destinationSide.stream().filter(o -> !source || !both.contains(o)).toList()));
        }
        sections.add(new Ferry.Section("Other settings (this process's default, as -Dferry.NAME)",
                MigrationFlags.settingOptions(MigrationFlags.unbound())));
        return sections;
    }

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

    static Sides sides(ParsedOptions o) {
        Sides given = new Sides(MigrationFlags.parameters(o), MigrationFlags.destination(o, MigrationFlags.DESTINATION));
        if (!o.has(TLS)) {
            return given;
        }
        Path dir = Path.of(o.<String>get(TLS));
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

    int bench(ParsedOptions o) throws Exception {
        try (AutoCloseable defaults = MigrationFlags.processDefaults(o)) {
            return bench(o, sides(o));
        }
    }

    private int bench(ParsedOptions o, Sides sides) throws Exception {
        if (o.has(VM)) {
            return gang(o, sides, o.texts(VM));
        }
        MigrationParameters params = sides.source();
        Instant started = Instant.now();
        try (Guest guest = Guest.create(o); ProgressOutput progress = ProgressOutput.of(Outputs.of(o), out);
             MetricsEndpoint metrics = MetricsEndpoint.of(Outputs.of(o), err)) {
            Migration.warmUp();
            PrintStream summary = progress.takesStdout() ? err : out;
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
                Timeline timeline;
                try (IncomingMigration in = sides.destination().apply(Migration.destination(targetVm)).memory(target)
                        .meterRegistry(metrics.registry()).start()) {
                    incoming.set(in);
                    tls = in.tlsProvider();
                    timeline = new Timeline(progress);
                    OutgoingMigration migration = Migration.source(guest.memory, guest.log, sourceVm)
                            .parameters(params).connect(in.address()).listener(timeline)
                            .meterRegistry(metrics.registry()).start();
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
                double memoryCopy = memoryCopy(source, destination, guest.memory, target);
                ObjectNode json = source.toJsonNode();
                json.put("workload", guest.workload.spec()).put("fill", o.text(FILL));
                runMembers(json, params, started);
                json.put("tls", tls.map(p -> p.name().toLowerCase(Locale.ROOT)).orElse("none"));
                json.set("timeline", timeline.toJsonNode());
                json.set("destination", destination.toJsonNode());
                json.put("guestWritesOnDestination", writesAfter);
                if (source.postcopy() != null && targetVm.resumed()) {
                    // the guest's own pace before the migration paused it, and on the destination
                    // while pages were still missing
                    long during = writesAtEnd - targetVm.resumedAtPagesWritten();
                    ReportJson.put(json, "guestPagesPerSecBefore", sourceVm.pausedAtPagesWritten() * 1e9
                            / (sourceVm.pausedAtNanos() - guestStart));
                    json.put("guestWritesDuringPostcopy", during);
                    ReportJson.put(json, "guestPagesPerSecDuringPostcopy", during * 1e9
                            / Math.max(1, migrationEnd - targetVm.resumedAtNanos()));
                }
                ReportJson.put(json, "wireBytesPerSec", source.bytesSent() * 1000.0 / source.totalTimeMs());
                ReportJson.put(json, "loopbackBytesPerSec", loopback);
                ReportJson.put(json, "throughputVsLoopback", source.bytesSent() * 1000.0 / source.totalTimeMs() / loopback);
                ReportJson.put(json, "memoryCopyBytesPerSec", memoryCopy);
                ReportJson.put(json, "throughputVsMemoryCopy", source.bytesSent() * 1000.0 / source.totalTimeMs() / memoryCopy);
                writeReports(o, json);
                summarize(summary, source, destination, loopback, memoryCopy);
                summary.printf(Locale.ROOT, "tls                %s%n", tls.map(p -> p.name().toLowerCase(Locale.ROOT) + ", mutual")
                        .orElse("none"));
                return !source.succeeded() || !destination.succeeded() ? 1
                        : source.downtimeLimitExceeded() ? EXIT_DOWNTIME_EXCEEDED : 0;
            }
        }
    }

    /**
     * A gang: every guest migrates at once over the connections the gang shares, into a
     * destination of its own in this process, the gang's members numbered 1.. on both sides. The report holds each
     * guest's report under {@code guests} and the gang's totals.
     */
    private int gang(ParsedOptions o, Sides sides, List<String> specs) throws Exception {
        if (o.has(WORKLOAD) || o.has(REPORT)) {
            throw new UsageException("--vm gives each guest's workload, and the HTML report is one guest's: leave out --"
                    + (o.has(WORKLOAD) ? WORKLOAD.name() : REPORT.name()));
        }
        MigrationParameters params = sides.source();
        Instant started = Instant.now();
        Gang sourceGang = o.has(WITHIN_GUESTS) ? Gang.withinGuests(params.maxBandwidth())
                : Gang.create(params.maxBandwidth(), params.dedupIndexSize());
        Gang destinationGang = Gang.create();
        List<Member> members = new java.util.ArrayList<>();
        try (MetricsEndpoint metrics = MetricsEndpoint.of(Outputs.of(o), err)) {
            for (String spec : specs) {
                members.add(Member.create(o, spec, members.size() + 1));
            }
            Migration.warmUp();
            for (Member m : members) {
                m.in = sides.destination().apply(Migration.destination(m.targetVm)).memory(m.target)
                        .gang(destinationGang, m.number).guest(m.name()).meterRegistry(metrics.registry()).start();
            }
            long began = System.nanoTime();
            for (Member m : members) {
                m.guest.workload.start(m.guest.memory, m.guest.log, PageGate.OPEN);
            }
            for (Member m : members) {
                m.out = Migration.source(m.guest.memory, m.guest.log, m.sourceVm).parameters(params)
                        .gang(sourceGang, m.number).guest(m.name()).meterRegistry(metrics.registry())
                        .connect(m.in.address()).start();
            }
            for (Member m : members) {
                m.source = m.out.result().get(maxWaitMillis(params), TimeUnit.MILLISECONDS);
                m.destination = m.in.result().get(params.peerTimeoutMillis() + 5000, TimeUnit.MILLISECONDS);
            }
            double totalMs = (System.nanoTime() - began) / 1e6;
            List<GangReport.Guest> reports = new java.util.ArrayList<>();
            for (Member m : members) {
                m.guest.workload.close();
                reports.add(new GangReport.Guest(m.number, m.guest.workload.spec(),
                        failedIfWorkloadDid(m.source, m.guest.workload), m.destination));
            }
            return reportGang(o, params, started, sourceGang, specs, reports, totalMs);
        } finally {
            for (Member m : members) {
                m.close();
            }
        }
    }

    /** The gang's report as JSON (with what a matrix row reads) and one line a guest; its exit status. */
    private int reportGang(ParsedOptions o, MigrationParameters params, Instant started, Gang gang, List<String> specs,
            List<GangReport.Guest> reports, double totalMs) throws java.io.IOException {
        ObjectNode json = GangReport.json(reports);
        json.put("mode", params.mode().name().toLowerCase(Locale.ROOT))
                .put("workload", (o.has(WITHIN_GUESTS) ? "gang-within:" : "gang:") + String.join("+", specs));
        ReportJson.put(json, "totalTimeMs", totalMs);
        json.put("handOver", "each guest when it converges").put("dedupAcrossGuests", !o.has(WITHIN_GUESTS));
        ((ObjectNode) json.get("dedup")).put("gangIndexEvictions", gang.indexEvictions())
                .put("gangIndexBytes", gang.indexBytes());
        json.put("fill", o.text(FILL));
        runMembers(json, params, started);
        writeReports(o, json);
        printGang(out, reports, json);
        return GangReport.exitStatus(reports);
    }

    /** One line a guest, then the gang's totals from its report {@code json}. */
    private static void printGang(PrintStream out, List<GangReport.Guest> guests, ObjectNode json) {
        for (GangReport.Guest g : guests) {
            MigrationReport s = g.report();
            out.printf(Locale.ROOT, "vm%-4d %-40s %s%s, %.1f ms, downtime %.2f ms, %,d bytes%s%n", g.member(),
                    g.workload(), s.outcome(), s.verified() ? " (verified)" : "", s.totalTimeMs(), s.downtimeMs(),
                    s.bytesSent(), s.dedup() == null ? "" : String.format(Locale.ROOT,
                            ", %,d references (%,d to other guests, %,d stale)", s.dedup().hits(),
                            s.dedup().acrossGuests(), s.dedup().stale()));
        }
        out.printf(Locale.ROOT, "gang               %s%s, %d guests, %.1f ms, %,d bytes sent%n",
                json.get("outcome").asText(), json.get("verified").asBoolean() ? " (verified)" : "", guests.size(),
                json.get("totalTimeMs").asDouble(), json.get("bytesSent").asLong());
    }

    /** One guest of a gang in this process: its source, its destination, and their migrations. */
    private static final class Member implements AutoCloseable {
        final int number;
        final Guest guest;
        final GuestMemory target;
        final WorkloadVm sourceVm;
        final WorkloadVm targetVm;
        IncomingMigration in;
        OutgoingMigration out;
        MigrationReport source;
        MigrationReport destination;

        private Member(int number, Guest guest) {
            this.number = number;
            this.guest = guest;
            this.target = GuestMemory.anonymous(guest.memory.byteSize());
            this.sourceVm = new WorkloadVm(guest.workload, guest.memory, guest.log, () -> PageGate.OPEN);
            this.targetVm = new WorkloadVm(guest.workload, target, new DirtyBitmap(target.pageCount()),
                    () -> in.pageGate());
        }

        static Member create(ParsedOptions o, String spec, int number) {
            return new Member(number, Guest.create(o, spec));
        }

        String name() {
            return "vm" + number;
        }

        @Override
        public void close() throws Exception {
            if (out != null) {
                out.close();
            }
            if (in != null) {
                in.close();
            }
            guest.close();
            target.close();
        }
    }

    int source(ParsedOptions o) throws Exception {
        try (AutoCloseable defaults = MigrationFlags.processDefaults(o)) {
            if (o.has(VM)) {
                return gangSource(o, connect(o), MigrationFlags.parameters(o), o.texts(VM));
            }
            return source(o, connect(o), MigrationFlags.parameters(o));
        }
    }

    /**
     * The source of a gang: guest {@code k} of the {@code --vm} list is member {@code k}; all
     * migrate to {@code address} (a {@code ferry dest --gang N}) over the connections they share.
     */
    private int gangSource(ParsedOptions o, InetSocketAddress address, MigrationParameters params,
            List<String> specs) throws Exception {
        if (o.has(WORKLOAD) || o.has(REPORT) || QemuTarget.of(o).given()) {
            throw new UsageException("a gang's guests are its --" + VM.name() + " workloads, one report in JSON");
        }
        Instant started = Instant.now();
        Gang gang = o.has(WITHIN_GUESTS) ? Gang.withinGuests(params.maxBandwidth())
                : Gang.create(params.maxBandwidth(), params.dedupIndexSize());
        List<Guest> guests = new java.util.ArrayList<>();
        List<OutgoingMigration> migrations = new java.util.ArrayList<>();
        try (MetricsEndpoint metrics = MetricsEndpoint.of(Outputs.of(o), err)) {
            for (String spec : specs) {
                guests.add(Guest.create(o, spec));
            }
            Migration.warmUp();
            long began = System.nanoTime();
            for (int k = 0; k < guests.size(); k++) {
                Guest g = guests.get(k);
                WorkloadVm vm = new WorkloadVm(g.workload, g.memory, g.log, () -> PageGate.OPEN);
                g.workload.start(g.memory, g.log, PageGate.OPEN);
                migrations.add(Migration.source(g.memory, g.log, vm).parameters(params).gang(gang, k + 1)
                        .guest("vm" + (k + 1)).meterRegistry(metrics.registry()).connect(address).start());
            }
            List<GangReport.Guest> reports = new java.util.ArrayList<>();
            for (int k = 0; k < guests.size(); k++) {
                MigrationReport report = migrations.get(k).result().get(maxWaitMillis(params), TimeUnit.MILLISECONDS);
                guests.get(k).workload.close();
                reports.add(new GangReport.Guest(k + 1, guests.get(k).workload.spec(),
                        failedIfWorkloadDid(report, guests.get(k).workload), null));
            }
            double totalMs = (System.nanoTime() - began) / 1e6;
            return reportGang(o, params, started, gang, specs, reports, totalMs);
        } finally {
            for (OutgoingMigration m : migrations) {
                m.close();
            }
            for (Guest g : guests) {
                g.close();
            }
        }
    }

    private int source(ParsedOptions o, InetSocketAddress address, MigrationParameters params) throws Exception {
        Instant started = Instant.now();
        QemuTarget qemu = QemuTarget.of(o);
        if (qemu.given()) {
            QemuTarget.requirePrecopy(params);
        }
        if (qemu.given()) {
            try (QemuTarget.Attached guest = qemu.attach(dev.ferry.qemu.QemuVm.Side.SOURCE, out);
                 ProgressOutput progress = ProgressOutput.of(Outputs.of(o), out);
                 MetricsEndpoint metrics = MetricsEndpoint.of(Outputs.of(o), err)) {
                Migration.warmUp();
                PrintStream summary = progress.takesStdout() ? err : out;
                Timeline timeline = new Timeline(progress);
                OutgoingMigration migration = Migration.source(guest.memory(), guest.log(), guest.vm())
                        .parameters(params).connect(address).listener(timeline).meterRegistry(metrics.registry()).start();
                MigrationReport report = migration.result().get(maxWaitMillis(params), TimeUnit.MILLISECONDS);
                ObjectNode json = report.toJsonNode();
                runMembers(json, params, started);
                json.set("timeline", timeline.toJsonNode());
                guest.putJsonMembers(json);
                writeReports(o, json);
                summarize(summary, report, null, 0, 0);
                return !report.succeeded() ? 1 : report.downtimeLimitExceeded() ? EXIT_DOWNTIME_EXCEEDED : 0;
            }
        }
        try (Guest guest = Guest.create(o); ProgressOutput progress = ProgressOutput.of(Outputs.of(o), out);
             MetricsEndpoint metrics = MetricsEndpoint.of(Outputs.of(o), err)) {
            Migration.warmUp();
            PrintStream summary = progress.takesStdout() ? err : out;
            WorkloadVm vm = new WorkloadVm(guest.workload, guest.memory, guest.log, () -> PageGate.OPEN);
            guest.workload.start(guest.memory, guest.log, PageGate.OPEN);
            Timeline timeline = new Timeline(progress);
            OutgoingMigration migration = Migration.source(guest.memory, guest.log, vm)
                    .parameters(params).connect(address).listener(timeline)
                    .meterRegistry(metrics.registry()).start();
            MigrationReport report = migration.result().get(maxWaitMillis(params), TimeUnit.MILLISECONDS);
            long writesBefore = guest.workload.pagesWritten();
            if (vm.resumed()) {
                // the guest still runs here: show it
                Thread.sleep(RUN_AFTER_MILLIS);
            }
            long writesAfterFailure = guest.workload.pagesWritten() - writesBefore;
            guest.workload.close();
            report = failedIfWorkloadDid(report, guest.workload);
            ObjectNode json = report.toJsonNode();
            json.put("workload", guest.workload.spec());
            runMembers(json, params, started);
            json.set("timeline", timeline.toJsonNode());
            json.put("guestWritesOnSourceAfterRun", writesAfterFailure);
            writeReports(o, json);
            summarize(summary, report, null, 0, 0);
            return !report.succeeded() ? 1 : report.downtimeLimitExceeded() ? EXIT_DOWNTIME_EXCEEDED : 0;
        }
    }

    /**
     * What the run was given and where it ran: the limits, the channels, and the metadata a reader
     * of a report needs to compare it with another (Ferry's version, the start, the host, the
     * transport).
     */
    private static void runMembers(ObjectNode json, MigrationParameters params, Instant started) {
        json.put("downtimeLimitMs", params.downtimeLimitMillis())
                .put("maxBandwidth", params.maxBandwidth())
                .put("channels", params.channels())
                .put("transport", Transports.nativeEpoll() ? "epoll" : "nio")
                .put("ferryVersion", FerryVersion.current())
                .put("startedAt", started.truncatedTo(ChronoUnit.SECONDS).toString())
                .put("host", hostName())
                .put("java", Runtime.version().toString());
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException e) {
            return "unknown";
        }
    }

    /** The destination's address, parsed as the one a destination listens on. */
    private static InetSocketAddress connect(ParsedOptions o) {
        List<InetSocketAddress> all = connects(o);
        if (all.size() > 1) {
            throw new UsageException("--" + CONNECT.name() + " once: a gang's guests share the destination's address");
        }
        return all.getFirst();
    }

    /** Every --connect given, in order; at least one. */
    private static List<InetSocketAddress> connects(ParsedOptions o) {
        List<String> texts = o.texts(CONNECT);
        if (texts.isEmpty()) {
            throw new UsageException("--" + CONNECT.name() + " " + CONNECT.label() + " is required");
        }
        List<InetSocketAddress> addresses = new java.util.ArrayList<>();
        for (String text : texts) {
            try {
                addresses.add(Configuration.LISTEN.parse(text));
            } catch (IllegalArgumentException e) {
                throw new UsageException("--" + CONNECT.name() + " " + text + ": " + e.getMessage());
            }
        }
        return addresses;
    }

    /** The options of {@code lists} in order, each once: a setting both sides take is one option. */
    @SafeVarargs
    private static List<CliOption> union(Stream<CliOption>... lists) {
        Map<String, CliOption> byName = new LinkedHashMap<>();
        Stream.of(lists).flatMap(list -> list).forEach(option -> byName.putIfAbsent(option.name(), option));
        return List.copyOf(byName.values());
    }

    /**
     * {@code ferry matrix}: runs {@code ferry bench} for every combination of the listed modes,
     * stages, workloads and bandwidths, each in a JVM of its own, and prints the medians.
     */
    int matrix(ParsedOptions o) throws Exception {
        List<String> common = passedOn(o);
        List<Long> bandwidths = o.get(BANDWIDTHS);
        List<Integer> channels = o.get(CHANNEL_COUNTS);
        // "zero+lz4" is one stage set in a list of sets
        List<String> stages = Matrix.list(o.get(STAGE_SETS)).stream().map(x -> x.replace('+', ',')).toList();
        List<Matrix.Cell> cells = Matrix.cells(Matrix.list(o.get(MODES)), stages, Matrix.list(o.get(WORKLOADS)),
                bandwidths, channels);
        for (Matrix.Cell cell : cells) {
            checkCell(cell, common);
        }
        int repeat = o.<Integer>get(REPEAT);
        long timeout = o.<Integer>get(RUN_TIMEOUT);
        boolean keep = o.has(RUNS_DIR);
        Path runs = keep ? o.get(RUNS_DIR) : Files.createTempDirectory("ferry-matrix-");
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
                    repeat, repeat == 1 ? "" : "s", commandLine(o));
            OutputPath.write(o.get(MARKDOWN), caption + MatrixTable.markdown(rows));
        }
        return rows.stream().allMatch(r -> r.verifiedCount() == r.attempts()) ? 0 : 1;
    }

    /** The bench options of {@code o} as every run of a matrix is given them. */
    static List<String> passedOn(ParsedOptions o) {
        List<String> args = new ArrayList<>();
        for (CliOption option : MATRIX_COMMON) {
            if (o.has(option)) {
                args.add(option.longName());
                if (!option.isFlag()) {
                    args.add(o.text(option));
                }
            }
        }
        return args;
    }

    /** The matrix's command line as a reader would repeat it, in its order: without where this machine put the output. */
    private static String commandLine(ParsedOptions o) {
        Set<String> outputs = Set.of(MARKDOWN.longName(), RUNS_DIR.longName());
        List<String> args = o.originalArgs();
        List<String> kept = new ArrayList<>();
        for (int i = 0; i < args.size(); i++) {
            String arg = args.get(i);
            int eq = arg.indexOf('=');
            if (!outputs.contains(eq < 0 ? arg : arg.substring(0, eq))) {
                kept.add(arg);
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
        ParsedOptions o = Ferry.parse("bench", args);
        sides(o);
        List<String> guests = cell.guests().isEmpty() ? List.of(cell.workload()) : cell.guests();
        for (String guest : guests) {
            try {
                Workloads.parse(guest, o.get(MEMORY), o.get(FILL), o.get(SEED), false).close();
            } catch (IllegalArgumentException | java.io.UncheckedIOException e) {
                throw new UsageException(e.getMessage());
            }
        }
    }

    /** {@code text} split at commas, each a value of {@code setting}. */
    private static <T> List<T> each(String text, Setting<T> setting) {
        return Matrix.list(text).stream().map(setting::parse).toList();
    }

    private static int positive(String text) {
        int n = Integer.parseInt(text);
        if (n < 1) {
            throw new IllegalArgumentException("must be a positive whole number, got " + text);
        }
        return n;
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
    private static void writeReports(ParsedOptions o, ObjectNode json) throws java.io.IOException {
        String text = ReportJson.text(json) + "\n";
        if (o.has(JSON)) {
            OutputPath.write(o.get(JSON), text);
        }
        if (o.has(REPORT)) {
            OutputPath.write(o.get(REPORT), HtmlReport.render(text));
        }
    }

    /**
     * The raw copy of the same bytes ({@link LoopbackBaseline#memoryToMemory}): as much of the
     * source guest's memory as the migration sent bytes, from its memory into the destination's,
     * which it overwrites with the same bytes; NaN when either side failed, since the destination's
     * memory may then still wait for pages (a userfaultfd region would block the copy).
     */
    private static double memoryCopy(MigrationReport source, MigrationReport destination, GuestMemory from,
            GuestMemory into) throws IOException, InterruptedException {
        if (!source.succeeded() || !destination.succeeded()) {
            return Double.NaN;
        }
        long bytes = Math.min(from.byteSize(), Math.max(source.bytesSent(), 1 << 20));
        return LoopbackBaseline.memoryToMemory(from.segment().asSlice(0, bytes), into.segment().asSlice(0, bytes));
    }

    private static void summarize(PrintStream out, MigrationReport s, MigrationReport d, double loopback,
            double memoryCopy) {
        out.printf(Locale.ROOT, "outcome            %s%s%n", s.outcome(), s.verified() ? " (verified)" : "");
        if (s.error() != null) {
            out.printf(Locale.ROOT, "error              %s%n", s.error());
        }
        out.printf(Locale.ROOT, "total time         %.1f ms%n", s.totalTimeMs());
        out.printf(Locale.ROOT, "downtime           %.2f ms (expected %.2f ms)%n", s.downtimeMs(), s.expectedDowntimeMs());
        if (s.switchover() != null) {
            var sw = s.switchover();
            out.printf(Locale.ROOT, "switch-over        %s, limit %d ms%s%s%n", sw.reason(), sw.downtimeLimitMs(),
                    sw.throttlePercent() > 0 ? ", guest throttled " + sw.throttlePercent() + "%" : "",
                    sw.limitExceeded() ? ", LIMIT EXCEEDED" : "");
            out.printf(Locale.ROOT, "pause predicted    sync %.2f + memory %.2f + device %.2f + hand-over %.2f ms%n",
                    sw.predicted().syncMs(), sw.predicted().memoryMs(), sw.predicted().deviceStateMs(),
                    sw.predicted().handoverMs());
            out.printf(Locale.ROOT, "pause measured     sync %.2f + memory %.2f + device %.2f + hand-over %.2f ms%n",
                    sw.actual().syncMs(), sw.actual().memoryMs(), sw.actual().deviceStateMs(), sw.actual().handoverMs());
        }
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
            if (memoryCopy > 0) {
                out.printf(Locale.ROOT, "same bytes copied  %.1f MB/s, source memory to destination memory over loopback, ratio %.3f%n",
                        memoryCopy / 1e6, wire / memoryCopy);
            }
        }
    }

    /** The source's guest: memory, dirty log and the workload that writes it. */
    private record Guest(Workload workload, GuestMemory memory, DirtyBitmap log) implements AutoCloseable {
        static Guest create(ParsedOptions o) {
            return create(o, o.get(WORKLOAD));
        }

        /** A guest of workload {@code spec}, the other options as given. */
        static Guest create(ParsedOptions o, String spec) {
            Workload workload;
            try {
                workload = Workloads.parse(spec, o.get(MEMORY), o.get(FILL), o.get(SEED), o.has(TRACE_LOOP));
            } catch (IllegalArgumentException e) {
                throw new UsageException(e.getMessage());
            } catch (java.io.UncheckedIOException e) {
                if (e.getCause() instanceof java.nio.file.NoSuchFileException missing) {
                    throw new UsageException("no such trace file: " + missing.getFile());
                }
                throw e;
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
