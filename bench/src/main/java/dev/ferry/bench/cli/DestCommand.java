package dev.ferry.bench.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.bench.cli.MigrationFlags.Bound;
import dev.ferry.core.Configuration;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.ReportJson;
import dev.ferry.core.Setting;
import dev.ferry.core.VmControl;
import dev.ferry.engine.DestinationBuilder;
import dev.ferry.engine.IncomingMigration;
import dev.ferry.engine.Migration;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/** {@code ferry dest}: serve one migration, report it, exit 0 only when it completed verified. */
final class DestCommand {
    /** Where to listen: a destination in a process of its own is told, bench's listens on loopback. */
    private static final Bound<DestinationBuilder, InetSocketAddress> LISTEN = MigrationFlags.bound(Configuration.LISTEN,
            DestinationBuilder::listen);
    /** A flag, not on/off: it is the one word that says plaintext off loopback is meant; bench listens on loopback. */
    private static final Bound<DestinationBuilder, Boolean> INSECURE = MigrationFlags.bound(Configuration.INSECURE,
            DestinationBuilder::insecure);
    private static final List<Bound<DestinationBuilder, ?>> DESTINATION = Stream.concat(Stream.of(LISTEN, INSECURE),
            MigrationFlags.DESTINATION.stream()).toList();
    private static final CliOption MEMORY = CliOption.valued("memory", "SIZE",
            "refuse sources of another size (default: the size the source announces)", null, Setting::parseSize);
    private static final CliOption JSON = CliOption.valued("json", "FILE", "write this side's report as JSON", null,
            OutputPath::file);
    private static final CliOption GANG = CliOption.valued("gang", "N", "receive the N guests of a gang (members 1..N of"
            + " a ferry source --vm ... --vm ...) on the one --listen address, over connections they share", null,
            DestCommand::members);
    /** The options only dest takes. */
    private static final List<CliOption> OWN = Stream.concat(Stream.of(LISTEN.option(), MEMORY, JSON, INSECURE.option(), GANG),
            MigrationFlags.settingOptions(MigrationFlags.OUTPUTS).stream()).toList();
    static final List<CliOption> OPTIONS = Stream.of(OWN, MigrationFlags.options(MigrationFlags.DESTINATION),
            QemuTarget.OPTIONS, MigrationFlags.settingOptions(MigrationFlags.unbound())).flatMap(List::stream).toList();

    private final PrintStream out;
    private final PrintStream err;

    DestCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** How long after the accept timeout this process gives up on a migration that never reported. */
    private static final long GIVE_UP_MARGIN_MILLIS = 10_000;

    /** What dest sets up from its options: the destination's settings, and how long it waits for a migration. */
    record Setup(UnaryOperator<DestinationBuilder> destination, long acceptTimeoutMillis) {
    }

    /** dest's help: its own options, then the destination's settings. */
    static List<Ferry.Section> sections() {
        return BenchCommand.withQemu(BenchCommand.settingSections(new Ferry.Section("Options", OWN), false, true));
    }

    static Setup setup(ParsedOptions o) {
        return new Setup(MigrationFlags.destination(o, DESTINATION), o.value(Configuration.ACCEPT_TIMEOUT));
    }

    int run(ParsedOptions o) throws Exception {
        try (AutoCloseable defaults = MigrationFlags.processDefaults(o)) {
            if (o.has(GANG)) {
                return gang(o, setup(o), o.get(GANG));
            }
            return run(o, setup(o));
        }
    }

    /** A connection the destination refused, said on stderr as it happens. */
    private void refused(String reason) {
        err.println("ferry dest: refused " + reason);
        err.flush();
    }

    /** This side's report to {@code --json}, when given. */
    private static void writeJson(ParsedOptions o, ObjectNode json) throws java.io.IOException {
        if (o.has(JSON)) {
            OutputPath.write(o.get(JSON), ReportJson.text(json) + "\n");
        }
    }

    private static int members(String text) {
        int n = Integer.parseInt(text);
        if (n < 1 || n > dev.ferry.engine.Gang.MAX_MEMBERS) {
            throw new IllegalArgumentException("a gang has 1.." + dev.ferry.engine.Gang.MAX_MEMBERS + " guests, got " + n);
        }
        return n;
    }

    /**
     * A gang's destination: one migration a member, all received on one listening socket over
     * the connections they share, into this process's gang, so that a reference to another member's page reads its
     * memory here. Exits 0 only when every member completed verified.
     */
    private int gang(ParsedOptions o, Setup setup, int count) throws Exception {
        if (QemuTarget.of(o).given() || o.has(MEMORY)) {
            throw new UsageException("--" + GANG.name() + " receives guests of the sizes their sources announce, without QEMU");
        }
        Migration.warmUp();
        dev.ferry.engine.Gang gang = dev.ferry.engine.Gang.create();
        List<IncomingMigration> members = new java.util.ArrayList<>();
        try (MetricsEndpoint metrics = MetricsEndpoint.of(Outputs.of(o), err)) {
            for (int k = 1; k <= count; k++) {
                DestinationBuilder builder = setup.destination().apply(Migration.destination(new ReceivedGuest(out)))
                        .onRefused(this::refused).memoryFromHandshake().gang(gang, k).guest("vm" + k).meterRegistry(metrics.registry());
                try {
                    members.add(builder.start());
                } catch (Exception e) {
                    if (!bindFailed(e)) {
                        throw e;
                    }
                    throw new UsageException("cannot listen on " + Configuration.LISTEN.format(builder.listen()) + " for"
                            + " member " + k + ": " + e.getMessage());
                }
            }
            InetSocketAddress shared = members.getFirst().address();
            out.println("listening on " + shared.getHostString() + ":" + shared.getPort());
            out.flush();
            List<GangReport.Guest> reports = new java.util.ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(setup.acceptTimeoutMillis() + GIVE_UP_MARGIN_MILLIS);
            for (int k = 0; k < members.size(); k++) {
                MigrationReport report;
                try {
                    report = members.get(k).result().get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                } catch (TimeoutException e) {
                    err.println("ferry dest: member " + (k + 1) + " did not complete within --"
                            + Configuration.ACCEPT_TIMEOUT.name());
                    return 1;
                }
                reports.add(new GangReport.Guest(k + 1, null, report, null));
                out.printf(Locale.ROOT, "vm%-4d %s%s, received %,d bytes, downtime %.2f ms, resumed=%s%s%n", k + 1,
                        report.outcome(), report.verified() ? " (verified)" : "", report.bytesSent(), report.downtimeMs(),
                        report.destinationResumed(), report.error() != null ? ", " + report.error() : "");
            }
            writeJson(o, GangReport.json(reports));
            out.printf(Locale.ROOT, "gang               %s, %d guests%n", GangReport.succeeded(reports) ? "COMPLETED" : "FAILED",
                    reports.size());
            return GangReport.succeeded(reports) ? 0 : 1;
        } finally {
            members.forEach(IncomingMigration::close);
        }
    }

    private int run(ParsedOptions o, Setup setup) throws Exception {
        long fixedBytes = o.has(MEMORY) ? o.<Long>get(MEMORY) : 0;
        QemuTarget qemu = QemuTarget.of(o);
        Migration.warmUp();
        // a QEMU destination receives into its RAM file, of the size QEMU has
        QemuTarget.Attached attached = qemu.given() ? qemu.attach(dev.ferry.qemu.QemuVm.Side.DESTINATION, out) : null;
        GuestMemory fixed = attached != null ? attached.memory() : fixedBytes > 0 ? GuestMemory.anonymous(fixedBytes) : null;
        ReceivedGuest guest = new ReceivedGuest(out);
        ProgressOutput progress = ProgressOutput.of(Outputs.of(o), out);
        MetricsEndpoint metrics = MetricsEndpoint.of(Outputs.of(o), err);
        DestinationBuilder builder = setup.destination().apply(Migration.destination(
                attached != null ? attached.vm() : guest)).onRefused(this::refused).listener(progress).meterRegistry(metrics.registry());
        if (attached != null) {
            builder.capabilities(QemuTarget.DESTINATION_CAPABILITIES);
        }
        if (fixed != null) {
            builder.memory(fixed);
        } else {
            builder.memoryFromHandshake();
        }
        IncomingMigration started;
        try {
            started = builder.start();
        } catch (Exception e) {
            if (fixed != null) {
                fixed.close();
            }
            if (!bindFailed(e)) {
                throw e;
            }
            // the address given is taken or not this host's: the command line's fault, not the migration's
            throw new UsageException("cannot listen on " + Configuration.LISTEN.format(builder.listen()) + ": "
                    + e.getMessage());
        }
        try (IncomingMigration in = started) {
            out.println("listening on " + in.address().getHostString() + ":" + in.address().getPort());
            in.tlsProvider().ifPresent(provider -> out.println("tls " + provider.name().toLowerCase(Locale.ROOT)
                    + ", allowing " + (builder.tlsAllow().isEmpty() ? "nobody (no --" + Configuration.TLS_ALLOW.name() + ")"
                            : String.join(",", builder.tlsAllow()))));
            out.flush();
            MigrationReport report;
            try {
                // past the library's own accept bound, so that when no source came its report (whom it
                // refused, and why) is what this process writes
                report = in.result().get(setup.acceptTimeoutMillis() + GIVE_UP_MARGIN_MILLIS, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                err.println("ferry dest: no migration completed within --" + Configuration.ACCEPT_TIMEOUT.name());
                return 1;
            }
            ObjectNode json = report.toJsonNode();
            if (attached != null) {
                attached.putJsonMembers(json);
            } else {
                json.put("deviceStateBytes", guest.deviceState == null ? 0 : guest.deviceState.length);
            }
            writeJson(o, json);
            out.printf(Locale.ROOT, "outcome            %s%s%n", report.outcome(), report.verified() ? " (verified)" : "");
            if (report.error() != null) {
                out.printf(Locale.ROOT, "error              %s%n", report.error());
            }
            out.printf(Locale.ROOT, "received           %,d bytes, %,d pages, downtime %.2f ms, resumed=%s%n",
                    report.bytesSent(), report.pagesSent(), report.downtimeMs(), report.destinationResumed());
            return report.succeeded() ? 0 : 1;
        } finally {
            metrics.close();
            progress.close();
            if (attached != null) {
                attached.close();
            } else if (fixed != null) {
                fixed.close();
            }
        }
    }

    /**
     * Whether {@code e} says the address could not be bound (in use, not here), whatever wraps it:
     * NIO says so with a BindException, native epoll with the errno of its bind call.
     */
    private static boolean bindFailed(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof java.net.BindException || t instanceof io.netty.channel.unix.Errors.NativeIoException) {
                return true;
            }
        }
        return false;
    }

    /**
     * The destination's guest in a process of its own: it keeps the device state and says when it
     * resumes ("resumed" on a line of its own; during post-copy that is before all pages are here).
     */
    private static final class ReceivedGuest implements VmControl {
        private final PrintStream out;
        private byte[] deviceState;

        ReceivedGuest(PrintStream out) {
            this.out = out;
        }

        @Override
        public void pause() {
        }

        @Override
        public void resume() {
            out.println("resumed");
            out.flush();
        }

        @Override
        public byte[] saveDeviceState() {
            return deviceState == null ? new byte[0] : deviceState.clone();
        }

        @Override
        public void loadDeviceState(byte[] state) {
            deviceState = state.clone();
        }
    }
}
