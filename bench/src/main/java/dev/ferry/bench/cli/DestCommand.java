package dev.ferry.bench.cli;

import dev.ferry.bench.cli.MigrationFlags.Bound;
import dev.ferry.bench.cli.Options.Option;
import dev.ferry.core.Configuration;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.JsonWriter;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.VmControl;
import dev.ferry.engine.DestinationBuilder;
import dev.ferry.engine.IncomingMigration;
import dev.ferry.engine.Migration;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
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
    private static final Option MEMORY = Option.valued("memory", "SIZE",
            "refuse sources of another size (default: the size the source announces)", null);
    private static final Option JSON = Option.valued("json", "FILE", "write this side's report as JSON", null);
    /** The options only dest takes. */
    static final List<Option> OWN = List.of(LISTEN.option(), MEMORY, JSON, INSECURE.option());
    static final List<Option> OPTIONS = Stream.of(OWN, MigrationFlags.options(MigrationFlags.DESTINATION),
            QemuTarget.OPTIONS).flatMap(List::stream).toList();

    private final PrintStream out;
    private final PrintStream err;

    DestCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** What dest sets up from its options: the destination's settings, and how long it waits for a migration. */
    record Setup(UnaryOperator<DestinationBuilder> destination, long acceptTimeoutMillis) {
    }

    static Setup setup(Options o) {
        return new Setup(MigrationFlags.destination(o, DESTINATION), o.value(Configuration.ACCEPT_TIMEOUT));
    }

    int run(String[] args) throws Exception {
        Options o = Options.parse(args, 1, OPTIONS);
        Setup setup = setup(o);
        long fixedBytes = o.has(MEMORY) ? o.getSize(MEMORY) : 0;
        QemuTarget qemu = QemuTarget.of(o);
        Migration.warmUp();
        // a QEMU destination receives into its RAM file, of the size QEMU has
        QemuTarget.Attached attached = qemu.given() ? qemu.attach(dev.ferry.qemu.QemuVm.Side.DESTINATION, out) : null;
        GuestMemory fixed = attached != null ? attached.memory() : fixedBytes > 0 ? GuestMemory.anonymous(fixedBytes) : null;
        ReceivedGuest guest = new ReceivedGuest(out);
        DestinationBuilder builder = setup.destination().apply(Migration.destination(
                attached != null ? attached.vm() : guest)).onRefused(reason -> {
                    err.println("ferry dest: refused " + reason);
                    err.flush();
                });
        if (attached != null) {
            builder.capabilities(QemuTarget.DESTINATION_CAPABILITIES);
        }
        if (fixed != null) {
            builder.memory(fixed);
        } else {
            builder.memoryFromHandshake();
        }
        try (IncomingMigration in = builder.start()) {
            out.println("listening on " + in.address().getHostString() + ":" + in.address().getPort());
            in.tlsProvider().ifPresent(provider -> out.println("tls " + provider.name().toLowerCase(Locale.ROOT)
                    + ", allowing " + (builder.tlsAllow().isEmpty() ? "nobody (no --" + Configuration.TLS_ALLOW.name() + ")"
                            : String.join(",", builder.tlsAllow()))));
            out.flush();
            MigrationReport report;
            try {
                report = in.result().get(setup.acceptTimeoutMillis(), TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                err.println("ferry dest: no migration completed within --" + Configuration.ACCEPT_TIMEOUT.name());
                return 1;
            }
            JsonWriter json = new JsonWriter().beginObject();
            report.writeJsonMembers(json);
            if (attached != null) {
                attached.writeJson(json);
            } else {
                json.name("deviceStateBytes").value(guest.deviceState == null ? 0 : guest.deviceState.length);
            }
            json.endObject();
            if (o.has(JSON)) {
                Files.writeString(Path.of(o.get(JSON)), json + "\n");
            }
            out.printf(Locale.ROOT, "outcome            %s%s%n", report.outcome(), report.verified() ? " (verified)" : "");
            if (report.error() != null) {
                out.printf(Locale.ROOT, "error              %s%n", report.error());
            }
            out.printf(Locale.ROOT, "received           %,d bytes, %,d pages, downtime %.2f ms, resumed=%s%n",
                    report.bytesSent(), report.pagesSent(), report.downtimeMs(), report.destinationResumed());
            return report.succeeded() ? 0 : 1;
        } finally {
            if (attached != null) {
                attached.close();
            } else if (fixed != null) {
                fixed.close();
            }
        }
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
