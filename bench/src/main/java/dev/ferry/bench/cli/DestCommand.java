package dev.ferry.bench.cli;

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
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** {@code ferry dest}: serve one migration, report it, exit 0 only when it completed verified. */
final class DestCommand {
    private final PrintStream out;
    private final PrintStream err;

    DestCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    int run(String[] args) throws Exception {
        Options o = Options.parse(args, 1, Set.of("listen", "memory", "json", "accept-timeout", "peer-timeout", "fault-mechanism", "recover-timeout"), Set.of());
        InetSocketAddress listen = address("listen", o.get("listen", "127.0.0.1:0"));
        Migration.warmUp();
        ReceivedGuest guest = new ReceivedGuest(out);
        DestinationBuilder builder = Migration.destination(guest).listen(listen).peerTimeoutMillis(o.getLong("peer-timeout", 10_000))
                .faultMechanism(BenchCommand.faultMechanism(o))
                .recoverTimeoutMillis(o.getLong("recover-timeout", 60_000));
        dev.ferry.core.GuestMemory fixed = o.has("memory") ? dev.ferry.core.GuestMemory.anonymous(o.getSize("memory", 0)) : null;
        if (fixed != null) {
            builder.memory(fixed);
        } else {
            builder.memoryFromHandshake();
        }
        try (IncomingMigration in = builder.start()) {
            out.println("listening on " + in.address().getHostString() + ":" + in.address().getPort());
            out.flush();
            MigrationReport report;
            try {
                report = in.result().get(o.getLong("accept-timeout", 300_000), TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                err.println("ferry dest: no migration completed within --accept-timeout");
                return 1;
            }
            JsonWriter json = new JsonWriter().beginObject();
            report.writeJsonMembers(json);
            json.name("deviceStateBytes").value(guest.deviceState == null ? 0 : guest.deviceState.length).endObject();
            if (o.has("json")) {
                Files.writeString(Path.of(o.get("json")), json + "\n");
            }
            out.printf(Locale.ROOT, "outcome            %s%s%n", report.outcome(), report.verified() ? " (verified)" : "");
            if (report.error() != null) {
                out.printf(Locale.ROOT, "error              %s%n", report.error());
            }
            out.printf(Locale.ROOT, "received           %,d bytes, %,d pages, downtime %.2f ms, resumed=%s%n",
                    report.bytesSent(), report.pagesSent(), report.downtimeMs(), report.destinationResumed());
            return report.succeeded() ? 0 : 1;
        } finally {
            if (fixed != null) {
                fixed.close();
            }
        }
    }

    static InetSocketAddress address(String option, String value) {
        if (value == null) {
            throw new UsageException("--" + option + " HOST:PORT is required");
        }
        int colon = value.lastIndexOf(':');
        if (colon <= 0) {
            throw new UsageException("--" + option + " takes HOST:PORT, got '" + value + "'");
        }
        try {
            int port = Integer.parseInt(value.substring(colon + 1));
            if (port < 0 || port > 65535) {
                throw new NumberFormatException();
            }
            return new InetSocketAddress(value.substring(0, colon), port);
        } catch (NumberFormatException e) {
            throw new UsageException("--" + option + " has a bad port in '" + value + "'");
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
