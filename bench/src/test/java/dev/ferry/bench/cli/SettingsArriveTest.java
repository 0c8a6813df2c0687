package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Configuration;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.Setting;
import dev.ferry.core.VmControl;
import dev.ferry.engine.DestinationBuilder;
import dev.ferry.engine.Migration;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * Every setting a command accepts arrives, with the value given, in everything that command
 * configures which holds it: the source's parameters, the destination's builder, what dest waits
 * for. {@code --recover-timeout} and {@code --fault-mechanism}, accepted by bench and source and
 * then dropped, failed this; so will any setting added to a command and not passed on.
 */
class SettingsArriveTest {
    /** What a command configured; null for what it does not run. */
    private record Configured(MigrationParameters source, DestinationBuilder destination, DestCommand.Setup destProcess,
            Outputs outputs, QemuTarget qemu) {
    }

    /** A value that is not the default, and where each thing a command configures holds the setting. */
    private record Example(String text, Function<MigrationParameters, Object> source,
            Function<DestinationBuilder, Object> destination, Function<DestCommand.Setup, Object> destProcess,
            Function<Outputs, Object> outputs, Function<QemuTarget, Object> qemu) {
        Example(String text, Function<MigrationParameters, Object> source,
                Function<DestinationBuilder, Object> destination, Function<DestCommand.Setup, Object> destProcess) {
            this(text, source, destination, destProcess, null, null);
        }
    }

    private static final Map<Setting<?>, Example> EXAMPLES = Map.ofEntries(
            source(Configuration.MODE, "hybrid", MigrationParameters::mode),
            source(Configuration.POSTCOPY_AFTER_ROUNDS, "2", MigrationParameters::postcopyAfterRounds),
            source(Configuration.DOWNTIME_LIMIT, "7", MigrationParameters::downtimeLimitMillis),
            source(Configuration.MAX_BANDWIDTH, "1000000", MigrationParameters::maxBandwidth),
            source(Configuration.MAX_ROUNDS, "3", MigrationParameters::maxRounds),
            source(Configuration.CHANNELS, "4", MigrationParameters::channels),
            source(Configuration.TIME_LIMIT, "9000", MigrationParameters::totalTimeLimitMillis),
            source(Configuration.STAGES, "zero,zstd", MigrationParameters::capabilities),
            source(Configuration.COMPRESSION, "always", MigrationParameters::adaptiveCompression),
            source(Configuration.XBZRLE_CACHE_SIZE, "1m", MigrationParameters::xbzrleCacheSize),
            source(Configuration.DEDUP_INDEX_SIZE, "2m", MigrationParameters::dedupIndexSize),
            source(Configuration.ZSTD_LEVEL, "5", MigrationParameters::zstdLevel),
            Map.entry(Configuration.PEER_TIMEOUT, new Example("1234", MigrationParameters::peerTimeoutMillis,
                    DestinationBuilder::peerTimeoutMillis, null)),
            Map.entry(Configuration.RECOVER_TIMEOUT, new Example("4321", MigrationParameters::recoverTimeoutMillis,
                    DestinationBuilder::recoverTimeoutMillis, null)),
            destination(Configuration.FAULT_MECHANISM, "software", DestinationBuilder::faultMechanism),
            destination(Configuration.PREALLOC, "on", DestinationBuilder::prealloc),
            destination(Configuration.MAX_MEMORY, "64g", DestinationBuilder::maxMemory),
            destination(Configuration.MAX_PENDING, "9", DestinationBuilder::maxPendingConnections),
            destination(Configuration.LISTEN, "127.0.0.1:7000", DestinationBuilder::listen),
            destination(Configuration.HANDSHAKE_TIMEOUT, "2500", DestinationBuilder::handshakeTimeoutMillis),
            Map.entry(Configuration.ACCEPT_TIMEOUT, new Example("99", null, DestinationBuilder::acceptTimeoutMillis,
                    DestCommand.Setup::acceptTimeoutMillis)),
            both(Configuration.TLS_CERT, "cert.pem", MigrationParameters::tlsCert, DestinationBuilder::tlsCert),
            both(Configuration.TLS_KEY, "key.pem", MigrationParameters::tlsKey, DestinationBuilder::tlsKey),
            both(Configuration.TLS_CA, "ca.pem", MigrationParameters::tlsCa, DestinationBuilder::tlsCa),
            both(Configuration.TLS_ALLOW, "ferry-a,ferry-b", MigrationParameters::tlsAllow, DestinationBuilder::tlsAllow),
            both(Configuration.TLS_PROVIDER, "jdk", MigrationParameters::tlsProvider, DestinationBuilder::tlsProvider),
            both(Configuration.MIGRATION_ID, "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5", MigrationParameters::migrationId,
                    DestinationBuilder::migrationId),
            source(Configuration.CONVERGENCE, "throttle", MigrationParameters::convergence),
            Map.entry(Configuration.PROGRESS, new Example("json", null, null, null, Outputs::progress, null)),
            Map.entry(Configuration.PROGRESS_FILE, new Example("p.jsonl", null, null, null, Outputs::progressFile, null)),
            Map.entry(Configuration.METRICS_PORT, new Example("9100", null, null, null, Outputs::metricsPort, null)),
            // a flag: given, it is true
            destination(Configuration.INSECURE, "true", DestinationBuilder::insecure),
            qemu(Configuration.QEMU_QMP, "/run/qemu.qmp", QemuTarget::qmp),
            qemu(Configuration.QEMU_RAM, "/dev/shm/guest", QemuTarget::ram),
            qemu(Configuration.QEMU_TIMEOUT, "1500", QemuTarget::timeoutMillis));

    @Test
    void everySettingBenchAcceptsArrivesOnEverySideThatHoldsIt() {
        assertArrive("bench", BenchCommand.BENCH, o -> {
            BenchCommand.Sides sides = BenchCommand.sides(o);
            return new Configured(sides.source(), sides.destination().apply(unstartedDestination()), null,
                    Outputs.of(o), null);
        });
    }

    @Test
    void everySettingSourceAcceptsArrivesInItsParameters() {
        assertArrive("source", BenchCommand.SOURCE, o -> new Configured(MigrationFlags.parameters(o), null, null,
                Outputs.of(o), QemuTarget.of(o)));
    }

    @Test
    void everySettingDestAcceptsArrivesInItsDestinationOrItsWait() {
        assertArrive("dest", DestCommand.OPTIONS, o -> {
            DestCommand.Setup setup = DestCommand.setup(o);
            return new Configured(null, setup.destination().apply(unstartedDestination()), setup, Outputs.of(o),
                    QemuTarget.of(o));
        });
    }

    @Test
    void everySettingIsAcceptedBySomeCommand() {
        Set<Setting<?>> accepted = new HashSet<>();
        for (List<CliOption> command : List.of(BenchCommand.BENCH, BenchCommand.SOURCE, DestCommand.OPTIONS)) {
            accepted.addAll(settings(command));
        }
        assertEquals(Set.copyOf(Configuration.settings()), accepted);
    }

    @Test
    void matrixPassesEveryOptionOnToItsRuns() {
        assertTrue(BenchCommand.MATRIX_COMMON.contains(CliOption.of(Configuration.RECOVER_TIMEOUT)));
        assertTrue(BenchCommand.MATRIX_COMMON.contains(CliOption.of(Configuration.FAULT_MECHANISM)));
        for (CliOption option : BenchCommand.MATRIX_COMMON) {
            List<String> given = option.isFlag() ? List.of("--" + option.name())
                    : List.of("--" + option.name(), option.setting() != null ? EXAMPLES.get(option.setting()).text()
                            : option.name().equals("fill") ? "text" : "2");
            ParsedOptions o = Ferry.parse("matrix", given);
            assertEquals(given, BenchCommand.passedOn(o), option.name());
            Ferry.parse("bench", given);
        }
    }

    @Test
    void helpOfEachCommandListsEveryOptionItTakesWithItsDefault() {
        Map<String, List<CliOption>> commands = Map.of("bench", BenchCommand.BENCH, "source", BenchCommand.SOURCE,
                "dest", DestCommand.OPTIONS, "matrix", BenchCommand.MATRIX);
        commands.forEach((command, options) -> {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            assertEquals(0, Ferry.run(new String[] {command, "--help"}, new PrintStream(out, true, StandardCharsets.UTF_8),
                    System.err));
            // picocli wraps where it likes: compare without whitespace
            String help = out.toString(StandardCharsets.UTF_8).replaceAll("\\s+", "");
            for (CliOption option : options) {
                String entry = ("--" + option.name() + (option.isFlag() ? "" : "=" + option.label()) + option.help())
                        .replaceAll("\\s+", "");
                assertTrue(help.contains(entry), () -> command + " --help lacks " + entry + ": " + help);
                if (option.setting() != null && !option.isFlag()) {
                    assertTrue(option.help().endsWith("(default " + defaultText(option.setting()) + ")"), option::help);
                }
            }
        });
    }

    @Test
    void aSettingNoCommandBindsIsSetAsTheProcessDefaultForTheCommandsRun() throws Exception {
        ParsedOptions o = Ferry.parse("bench", List.of("--downtime-limit", "7"));
        try (AutoCloseable defaults = MigrationFlags.processDefaults(o, List.of(Configuration.DOWNTIME_LIMIT))) {
            assertEquals(7L, Configuration.DOWNTIME_LIMIT.value());
            assertEquals(7L, MigrationParameters.defaults().downtimeLimitMillis(), "builders start from it");
        }
        assertEquals(Configuration.DOWNTIME_LIMIT_DEFAULT, Configuration.DOWNTIME_LIMIT.value(), "and it is put back");
        for (Setting<?> unbound : MigrationFlags.unbound()) {
            for (List<CliOption> command : List.of(BenchCommand.BENCH, BenchCommand.SOURCE, DestCommand.OPTIONS)) {
                assertTrue(command.contains(CliOption.of(unbound)), "--" + unbound + " is offered by every migration command");
            }
        }
    }

    @Test
    void sourceRefusesWhatOnlyADestinationTakes() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Ferry.run(new String[] {"source", "--connect", "127.0.0.1:1", "--fault-mechanism", "software"},
                System.out, new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, status);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("Unknown options: '--fault-mechanism'"), err::toString);
    }

    @Test
    void aQemuSourceRefusesPostcopyAndHalfItsOptions() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Ferry.run(new String[] {"source", "--connect", "127.0.0.1:1", "--qemu-qmp", "/run/q.qmp", "--qemu-ram",
            "/dev/shm/g", "--mode", "hybrid"}, System.out, new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, status);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("pre-copy only"), err::toString);
        err.reset();
        status = Ferry.run(new String[] {"dest", "--qemu-ram", "/dev/shm/g"}, System.out,
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, status);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("--qemu-qmp and --qemu-ram go together"), err::toString);
    }

    @Test
    void aBadValueIsAUsageErrorNamingTheOption() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Ferry.run(new String[] {"bench", "--recover-timeout", "0"}, System.out,
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, status);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("--recover-timeout': recover-timeout must be >= 1, got 0"), err::toString);
    }

    private static void assertArrive(String command, List<CliOption> accepted,
            Function<ParsedOptions, Configured> configure) {
        List<Setting<?>> settings = settings(accepted);
        assertFalse(settings.isEmpty(), command);
        for (Setting<?> setting : settings) {
            Example example = EXAMPLES.get(setting);
            assertNotNull(example, () -> command + " accepts --" + setting + ": give it an example here, and where it arrives");
            Object expected = setting.parse(example.text());
            assertNotEquals(setting.value(), expected, () -> "the example of --" + setting + " is its default");

            boolean flag = accepted.stream().anyMatch(o -> o.setting() == setting && o.isFlag());
            List<String> given = flag ? List.of("--" + setting) : List.of("--" + setting, example.text());
            Configured configured = configure.apply(Ferry.parse(command, given));
            Map<String, Object> arrived = new LinkedHashMap<>();
            read(arrived, "the source's parameters", configured.source(), example.source());
            read(arrived, "the destination's builder", configured.destination(), example.destination());
            read(arrived, "what dest waits for", configured.destProcess(), example.destProcess());
            read(arrived, "what the command shows", configured.outputs(), example.outputs());
            read(arrived, "the QEMU it attaches to", configured.qemu(), example.qemu());
            assertFalse(arrived.isEmpty(), () -> command + " accepts --" + setting + " but configures nothing that holds it");
            arrived.forEach((where, value) -> assertEquals(expected, value,
                    () -> command + " --" + setting + " " + example.text() + " did not arrive in " + where));
        }
    }

    private static <C> void read(Map<String, Object> arrived, String where, C configured, Function<C, Object> holder) {
        if (configured != null && holder != null) {
            arrived.put(where, holder.apply(configured));
        }
    }

    private static List<Setting<?>> settings(List<CliOption> options) {
        return options.stream().map(CliOption::setting).filter(Objects::nonNull).toList();
    }

    private static DestinationBuilder unstartedDestination() {
        return Migration.destination(VmControl.idle());
    }

    private static <T> String defaultText(Setting<T> setting) {
        return setting.format(setting.value());
    }

    private static Map.Entry<Setting<?>, Example> source(Setting<?> setting, String text,
            Function<MigrationParameters, Object> holder) {
        return Map.entry(setting, new Example(text, holder, null, null));
    }

    private static Map.Entry<Setting<?>, Example> both(Setting<?> setting, String text,
            Function<MigrationParameters, Object> source, Function<DestinationBuilder, Object> destination) {
        return Map.entry(setting, new Example(text, source, destination, null));
    }

    private static Map.Entry<Setting<?>, Example> qemu(Setting<?> setting, String text, Function<QemuTarget, Object> holder) {
        return Map.entry(setting, new Example(text, null, null, null, null, holder));
    }

    private static Map.Entry<Setting<?>, Example> destination(Setting<?> setting, String text,
            Function<DestinationBuilder, Object> holder) {
        return Map.entry(setting, new Example(text, null, holder, null));
    }
}
