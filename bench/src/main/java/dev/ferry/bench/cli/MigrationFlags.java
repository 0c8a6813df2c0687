package dev.ferry.bench.cli;

import dev.ferry.core.Capability;
import dev.ferry.core.Configuration;
import dev.ferry.core.ConvergencePolicy;
import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.Setting;
import dev.ferry.engine.DestinationBuilder;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

/**
 * The settings each side of a migration takes on the command line, each bound to the builder
 * method that takes it. A command accepts a setting only as one of these, so none can be
 * accepted and then dropped.
 */
final class MigrationFlags {
    /** A setting and the builder method that takes it. */
    record Bound<B, T>(Setting<T> setting, BiConsumer<B, T> setter) {
        CliOption option() {
            return setting == Configuration.INSECURE ? CliOption.flag(Configuration.INSECURE) : CliOption.of(setting);
        }

        /** Sets the value {@code o} gives, parsed now so a bad one fails first; nothing when none is given. */
        Consumer<B> given(ParsedOptions o) {
            if (!o.has(setting.name())) {
                return builder -> { };
            }
            T value = o.value(setting);
            return builder -> setter.accept(builder, value);
        }
    }

    /** What a source takes, into its parameters. */
    static final List<Bound<MigrationParameters.Builder, ?>> SOURCE = List.of(
            bound(Configuration.MODE, MigrationParameters.Builder::mode),
            bound(Configuration.POSTCOPY_AFTER_ROUNDS, MigrationParameters.Builder::postcopyAfterRounds),
            bound(Configuration.DOWNTIME_LIMIT, MigrationParameters.Builder::downtimeLimitMillis),
            bound(Configuration.MAX_BANDWIDTH, MigrationParameters.Builder::maxBandwidth),
            bound(Configuration.MAX_ROUNDS, MigrationParameters.Builder::maxRounds),
            bound(Configuration.TIME_LIMIT, MigrationParameters.Builder::totalTimeLimitMillis),
            bound(Configuration.CONVERGENCE, MigrationParameters.Builder::convergence),
            bound(Configuration.CHANNELS, MigrationParameters.Builder::channels),
            bound(Configuration.STAGES, MigrationParameters.Builder::capabilities),
            bound(Configuration.COMPRESSION, MigrationParameters.Builder::adaptiveCompression),
            bound(Configuration.XBZRLE_CACHE_SIZE, MigrationParameters.Builder::xbzrleCacheSize),
            bound(Configuration.DEDUP_INDEX_SIZE, MigrationParameters.Builder::dedupIndexSize),
            bound(Configuration.ZSTD_LEVEL, MigrationParameters.Builder::zstdLevel),
            bound(Configuration.PEER_TIMEOUT, MigrationParameters.Builder::peerTimeoutMillis),
            bound(Configuration.RECOVER_TIMEOUT, MigrationParameters.Builder::recoverTimeoutMillis),
            bound(Configuration.TLS_CERT, MigrationParameters.Builder::tlsCert),
            bound(Configuration.TLS_KEY, MigrationParameters.Builder::tlsKey),
            bound(Configuration.TLS_CA, MigrationParameters.Builder::tlsCa),
            bound(Configuration.TLS_ALLOW, MigrationParameters.Builder::tlsAllow),
            bound(Configuration.TLS_PROVIDER, MigrationParameters.Builder::tlsProvider),
            bound(Configuration.MIGRATION_ID, MigrationParameters.Builder::migrationId));

    /** What a destination takes, into its builder ({@code dest} also takes where to listen). */
    static final List<Bound<DestinationBuilder, ?>> DESTINATION = List.of(
            bound(Configuration.FAULT_MECHANISM, DestinationBuilder::faultMechanism),
            bound(Configuration.PEER_TIMEOUT, DestinationBuilder::peerTimeoutMillis),
            bound(Configuration.RECOVER_TIMEOUT, DestinationBuilder::recoverTimeoutMillis),
            bound(Configuration.PREALLOC, DestinationBuilder::prealloc),
            bound(Configuration.MAX_MEMORY, DestinationBuilder::maxMemory),
            bound(Configuration.MAX_PENDING, DestinationBuilder::maxPendingConnections),
            bound(Configuration.HANDSHAKE_TIMEOUT, DestinationBuilder::handshakeTimeoutMillis),
            bound(Configuration.ACCEPT_TIMEOUT, DestinationBuilder::acceptTimeoutMillis),
            bound(Configuration.TLS_CERT, DestinationBuilder::tlsCert),
            bound(Configuration.TLS_KEY, DestinationBuilder::tlsKey),
            bound(Configuration.TLS_CA, DestinationBuilder::tlsCa),
            bound(Configuration.TLS_ALLOW, DestinationBuilder::tlsAllow),
            bound(Configuration.TLS_PROVIDER, DestinationBuilder::tlsProvider),
            bound(Configuration.MIGRATION_ID, DestinationBuilder::migrationId));

    private MigrationFlags() {
    }

    static <B, T> Bound<B, T> bound(Setting<T> setting, BiConsumer<B, T> setter) {
        return new Bound<>(setting, setter);
    }

    /** What only {@code dest} takes and binds itself: where to listen, and plaintext off loopback. */
    static final List<Setting<?>> DEST_PROCESS = List.of(Configuration.LISTEN, Configuration.INSECURE);

    /** What bench, source and dest show while they run and serve, which each command reads itself ({@link Outputs}). */
    static final List<Setting<?>> OUTPUTS = List.of(Configuration.PROGRESS, Configuration.PROGRESS_FILE,
            Configuration.METRICS_PORT);

    /** What source and dest take to migrate a QEMU guest, which {@link QemuTarget} reads itself. */
    static final List<Setting<?>> QEMU = List.of(Configuration.QEMU_QMP, Configuration.QEMU_RAM,
            Configuration.QEMU_TIMEOUT);

    /**
     * The settings of {@link Configuration} that no list above binds (a setting just added):
     * bench, source and dest take them all, and set them as this process's default, the system
     * property every builder starts from, so a new setting is on the command line before
     * anyone binds it.
     */
    static List<Setting<?>> unbound() {
        Set<Setting<?>> bound = new HashSet<>(DEST_PROCESS);
        bound.addAll(OUTPUTS);
        bound.addAll(QEMU);
        SOURCE.forEach(b -> bound.add(b.setting()));
        DESTINATION.forEach(b -> bound.add(b.setting()));
        return Configuration.settings().stream().filter(s -> !bound.contains(s)).toList();
    }

    /**
     * Sets each unbound setting {@code o} gives as its system property (checked when it was
     * parsed); closing puts the properties back as they were. Not for two commands at once in
     * one process: the properties are the process's.
     */
    static AutoCloseable processDefaults(ParsedOptions o) {
        return processDefaults(o, unbound());
    }

    /** Sets each of {@code settings} that {@code o} gives as its system property; closing restores them. */
    static AutoCloseable processDefaults(ParsedOptions o, List<Setting<?>> settings) {
        Map<String, String> before = new HashMap<>();
        for (Setting<?> setting : settings) {
            if (o.has(setting.name())) {
                before.put(setting.propertyName(), System.getProperty(setting.propertyName()));
                System.setProperty(setting.propertyName(), o.text(CliOption.of(setting)));
            }
        }
        return () -> before.forEach((name, value) -> {
            if (value == null) {
                System.clearProperty(name);
            } else {
                System.setProperty(name, value);
            }
        });
    }

    /** The options of {@code settings}. */
    static List<CliOption> settingOptions(List<Setting<?>> settings) {
        return settings.stream().map(CliOption::of).toList();
    }

    /** The options of {@code bound}'s settings. */
    static List<CliOption> options(List<? extends Bound<?, ?>> bound) {
        return bound.stream().map(Bound::option).toList();
    }

    /** The source's parameters: the defaults, then the settings {@code o} gives. */
    static MigrationParameters parameters(ParsedOptions o) {
        MigrationParameters.Builder b = MigrationParameters.builder();
        SOURCE.forEach(setting -> setting.given(o).accept(b));
        MigrationParameters p = b.build();
        if (p.mode() == MigrationMode.PRECOPY && p.convergence() != ConvergencePolicy.POSTCOPY) {
            return p;
        }
        // a mode or policy that may hand over by post-copy offers it: the command line has no other way to
        Set<Capability> offered = p.capabilities();
        offered.add(Capability.POSTCOPY);
        return b.capabilities(offered).build();
    }

    /** The settings of {@code bound} that {@code o} gives, checked now and applied to a builder later. */
    static UnaryOperator<DestinationBuilder> destination(ParsedOptions o, List<Bound<DestinationBuilder, ?>> bound) {
        List<Consumer<DestinationBuilder>> given = bound.stream().map(setting -> setting.given(o)).toList();
        return builder -> {
            given.forEach(setting -> setting.accept(builder));
            return builder;
        };
    }
}
