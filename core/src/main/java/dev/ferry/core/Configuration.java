package dev.ferry.core;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Collectors;

/**
 * Every setting of a migration, in one place, as Aeron's {@code Configuration}: for each, the
 * name the command line uses (QEMU's where QEMU has one), the system property that overrides its
 * default for a process, the default, its meaning and range. {@link MigrationParameters} (the
 * source's side) and the engine's destination builder start from these, and {@code ferry}'s
 * options and help are generated from them, so a default is written here and nowhere else.
 */
public final class Configuration {
    /** The compression stages a source may offer; the other capabilities are not chosen as stages. */
    private static final Set<Capability> STAGE_CAPABILITIES = EnumSet.of(Capability.ZERO_PAGES, Capability.XBZRLE,
            Capability.LZ4, Capability.ZSTD, Capability.DEDUP);

    public static final String MODE_PROP_NAME = "ferry.mode";
    public static final MigrationMode MODE_DEFAULT = MigrationMode.PRECOPY;
    public static final Setting<MigrationMode> MODE = Setting.choice(MODE_PROP_NAME, MigrationMode.class, MODE_DEFAULT,
            "how to hand over: postcopy switches after the bulk round, hybrid once pre-copy stops converging");

    public static final String POSTCOPY_AFTER_ROUNDS_PROP_NAME = "ferry.postcopy-after-rounds";
    public static final int POSTCOPY_AFTER_ROUNDS_DEFAULT = -1;
    public static final Setting<Integer> POSTCOPY_AFTER_ROUNDS = Setting.integer(POSTCOPY_AFTER_ROUNDS_PROP_NAME,
            POSTCOPY_AFTER_ROUNDS_DEFAULT, -1, Integer.MAX_VALUE,
            "hybrid: switch to post-copy after N pre-copy rounds at the latest; -1 leaves it to the estimate");

    public static final String DOWNTIME_LIMIT_PROP_NAME = "ferry.downtime-limit";
    /** As QEMU's. */
    public static final long DOWNTIME_LIMIT_DEFAULT = 300;
    public static final Setting<Long> DOWNTIME_LIMIT = Setting.number(DOWNTIME_LIMIT_PROP_NAME, DOWNTIME_LIMIT_DEFAULT,
            1, Long.MAX_VALUE, "MS", "the longest pause the switch-over may take (QEMU downtime-limit)");

    public static final String MAX_BANDWIDTH_PROP_NAME = "ferry.max-bandwidth";
    /** Unlimited, where QEMU caps at 128 MiB/s: a cap is the caller's choice. */
    public static final long MAX_BANDWIDTH_DEFAULT = 0;
    public static final Setting<Long> MAX_BANDWIDTH = Setting.rate(MAX_BANDWIDTH_PROP_NAME, MAX_BANDWIDTH_DEFAULT,
            "bytes per second on the wire, 0 for unlimited (QEMU max-bandwidth): 100m is 100 MiB/s, 800mbit 100 MB/s");

    public static final String MAX_ROUNDS_PROP_NAME = "ferry.max-rounds";
    public static final int MAX_ROUNDS_DEFAULT = 30;
    public static final Setting<Integer> MAX_ROUNDS = Setting.integer(MAX_ROUNDS_PROP_NAME, MAX_ROUNDS_DEFAULT, 1,
            Integer.MAX_VALUE, "switch over after N rounds whatever the estimate");

    public static final String CHANNELS_PROP_NAME = "ferry.channels";
    /** Measured: see the README's channel figures for why two. */
    public static final int CHANNELS_DEFAULT = 2;
    public static final Setting<Integer> CHANNELS = Setting.integer(CHANNELS_PROP_NAME, CHANNELS_DEFAULT, 1, 64,
            "page channels: TCP connections carrying pages side by side, each with its own thread (QEMU multifd-channels)");

    public static final String TIME_LIMIT_PROP_NAME = "ferry.time-limit";
    public static final long TIME_LIMIT_DEFAULT = 0;
    public static final Setting<Long> TIME_LIMIT = Setting.number(TIME_LIMIT_PROP_NAME, TIME_LIMIT_DEFAULT, 0,
            Long.MAX_VALUE, "MS", "switch over after MS whatever the estimate, 0 for no limit");

    public static final String STAGES_PROP_NAME = "ferry.stages";
    /**
     * Zero pages, dedup, XBZRLE and LZ4, the set the README's results call {@code auto}: with
     * {@link #COMPRESSION} adaptive, LZ4 is used only where it measures faster; a guest alone looks
     * its pages up for dedup only while that finds copies; zstd is asked for. Dedup joined when it
     * measured free of time: on the three shared traces and on a 1 GiB guest of distinct pages.
     */
    public static final Set<Capability> STAGES_DEFAULT = Collections.unmodifiableSet(EnumSet.of(Capability.ZERO_PAGES,
            Capability.XBZRLE, Capability.LZ4, Capability.DEDUP));
    public static final Setting<Set<Capability>> STAGES = Setting.of(STAGES_PROP_NAME, "LIST",
            "none, auto or a list of " + names(STAGE_CAPABILITIES), STAGES_DEFAULT, Configuration::stages,
            Configuration::names, "the stages pages may go through: none, auto (the default set) or a subset of "
                    + names(STAGE_CAPABILITIES));

    public static final String COMPRESSION_PROP_NAME = "ferry.compression";
    /** Adaptive ({@code true}): compressing costs more than it saves on a fast link. */
    public static final boolean COMPRESSION_DEFAULT = true;
    /** {@code true}: adaptive; {@code false}: always. */
    public static final Setting<Boolean> COMPRESSION = Setting.choice(COMPRESSION_PROP_NAME, List.of(true, false),
            adaptive -> adaptive ? "adaptive" : "always", COMPRESSION_DEFAULT,
            "adaptive: LZ4/zstd are used only while measured, every 8 MiB, to make pages cross faster; always: whenever negotiated");

    public static final String XBZRLE_CACHE_SIZE_PROP_NAME = "ferry.xbzrle-cache-size";
    /** As QEMU's. */
    public static final long XBZRLE_CACHE_SIZE_DEFAULT = 64L << 20;
    public static final Setting<Long> XBZRLE_CACHE_SIZE = Setting.size(XBZRLE_CACHE_SIZE_PROP_NAME,
            XBZRLE_CACHE_SIZE_DEFAULT, "bytes of pages kept as last sent, for XBZRLE deltas (QEMU xbzrle-cache-size)");

    public static final String DEDUP_INDEX_SIZE_PROP_NAME = "ferry.dedup-index-size";
    /**
     * 64 MiB, as QEMU's XBZRLE cache: at 16 bytes an entry it names 4 M contents, 16 GiB of
     * distinct pages, more than one source host's guests usually hold; split among the channels.
     * A bound: each index starts at 1 MiB and doubles as its contents need.
     */
    public static final long DEDUP_INDEX_SIZE_DEFAULT = 64L << 20;
    public static final Setting<Long> DEDUP_INDEX_SIZE = Setting.size(DEDUP_INDEX_SIZE_PROP_NAME,
            DEDUP_INDEX_SIZE_DEFAULT, "bytes of the source's content index for dedup references (16 bytes a page)");

    public static final String ZSTD_LEVEL_PROP_NAME = "ferry.zstd-level";
    /** As QEMU's {@code multifd-zstd-level}. */
    public static final int ZSTD_LEVEL_DEFAULT = 1;
    public static final Setting<Integer> ZSTD_LEVEL = Setting.integer(ZSTD_LEVEL_PROP_NAME, ZSTD_LEVEL_DEFAULT, -7, 22,
            "zstd compression level (QEMU multifd-zstd-level)");

    public static final String PEER_TIMEOUT_PROP_NAME = "ferry.peer-timeout";
    public static final long PEER_TIMEOUT_DEFAULT = 10_000;
    public static final Setting<Long> PEER_TIMEOUT = Setting.number(PEER_TIMEOUT_PROP_NAME, PEER_TIMEOUT_DEFAULT, 1,
            Long.MAX_VALUE, "MS", "a peer silent this long while it owes us something is dead");

    public static final String RECOVER_TIMEOUT_PROP_NAME = "ferry.recover-timeout";
    public static final long RECOVER_TIMEOUT_DEFAULT = 60_000;
    public static final Setting<Long> RECOVER_TIMEOUT = Setting.number(RECOVER_TIMEOUT_PROP_NAME,
            RECOVER_TIMEOUT_DEFAULT, 1, Long.MAX_VALUE, "MS",
            "how long a link lost during post-copy may stay lost: the source reconnects, the destination waits");

    public static final String FAULT_MECHANISM_PROP_NAME = "ferry.fault-mechanism";
    public static final FaultMechanism FAULT_MECHANISM_DEFAULT = FaultMechanism.AUTO;
    public static final Setting<FaultMechanism> FAULT_MECHANISM = Setting.choice(FAULT_MECHANISM_PROP_NAME,
            FaultMechanism.class, FAULT_MECHANISM_DEFAULT,
            "how the destination catches accesses to missing pages during post-copy; auto: userfaultfd where allowed");

    public static final String LISTEN_PROP_NAME = "ferry.listen";
    /** Loopback: listening elsewhere is the caller's decision. */
    public static final InetSocketAddress LISTEN_DEFAULT = new InetSocketAddress("127.0.0.1", 0);
    public static final Setting<InetSocketAddress> LISTEN = Setting.of(LISTEN_PROP_NAME, "HOST:PORT", "HOST:PORT",
            LISTEN_DEFAULT, Configuration::address, a -> a.getHostString() + ":" + a.getPort(),
            "where the destination listens; port 0 picks a free one");

    public static final String PREALLOC_PROP_NAME = "ferry.prealloc";
    /** Off, as in QEMU: a destination's memory is touched as pages arrive. */
    public static final boolean PREALLOC_DEFAULT = false;
    public static final Setting<Boolean> PREALLOC = Setting.choice(PREALLOC_PROP_NAME, List.of(true, false),
            on -> on ? "on" : "off", PREALLOC_DEFAULT,
            "on: fault the destination's guest memory in before the migration (QEMU -mem-prealloc)");

    public static final String MAX_MEMORY_PROP_NAME = "ferry.max-memory";
    /** 1 TiB, as far as a trace goes (2^28 pages): a claim above it is refused before anything is allocated. */
    public static final long MAX_MEMORY_DEFAULT = 1L << 40;
    public static final Setting<Long> MAX_MEMORY = Setting.size(MAX_MEMORY_PROP_NAME, MAX_MEMORY_DEFAULT,
            "the largest guest a destination accepts: a source claiming more is refused before anything is allocated");

    public static final String MAX_PENDING_PROP_NAME = "ferry.max-pending-connections";
    /** Enough for every channel of a session connecting at once. */
    public static final int MAX_PENDING_DEFAULT = 72;
    public static final Setting<Integer> MAX_PENDING = Setting.integer(MAX_PENDING_PROP_NAME, MAX_PENDING_DEFAULT, 1,
            4096, "connections a destination holds open before they said what they are; more are closed at once");

    public static final String HANDSHAKE_TIMEOUT_PROP_NAME = "ferry.handshake-timeout";
    /** As long as the peer timeout: a real source says what a connection is at once. */
    public static final long HANDSHAKE_TIMEOUT_DEFAULT = 10_000;
    public static final Setting<Long> HANDSHAKE_TIMEOUT = Setting.number(HANDSHAKE_TIMEOUT_PROP_NAME,
            HANDSHAKE_TIMEOUT_DEFAULT, 1, Long.MAX_VALUE, "MS",
            "a connection to a destination that has not said what it is within MS is closed, and fails nothing");

    public static final String ACCEPT_TIMEOUT_PROP_NAME = "ferry.accept-timeout";
    public static final long ACCEPT_TIMEOUT_DEFAULT = 300_000;
    public static final Setting<Long> ACCEPT_TIMEOUT = Setting.number(ACCEPT_TIMEOUT_PROP_NAME, ACCEPT_TIMEOUT_DEFAULT,
            1, Long.MAX_VALUE, "MS", "a destination fails unless a source's HELLO was taken within MS; a destination"
                    + " process also gives up unless the migration completed within MS");

    public static final String TLS_CERT_PROP_NAME = "ferry.tls-cert";
    public static final Setting<Optional<Path>> TLS_CERT = Setting.of(TLS_CERT_PROP_NAME, "FILE", "a PEM file or none",
            Optional.empty(), Configuration::file, Configuration::fileName,
            "this side's certificate chain (PEM); with tls-key and tls-ca, every connection is mutual TLS 1.3");

    public static final String TLS_KEY_PROP_NAME = "ferry.tls-key";
    public static final Setting<Optional<Path>> TLS_KEY = Setting.of(TLS_KEY_PROP_NAME, "FILE", "a PEM file or none",
            Optional.empty(), Configuration::file, Configuration::fileName,
            "the private key of tls-cert (PKCS#8 PEM, unencrypted)");

    public static final String TLS_CA_PROP_NAME = "ferry.tls-ca";
    public static final Setting<Optional<Path>> TLS_CA = Setting.of(TLS_CA_PROP_NAME, "FILE", "a PEM file or none",
            Optional.empty(), Configuration::file, Configuration::fileName,
            "the certificate authorities a peer's certificate must chain to (PEM)");

    public static final String TLS_ALLOW_PROP_NAME = "ferry.tls-allow";
    /**
     * None given: a source allows the host it connects to (QEMU's tls-hostname), a destination
     * allows nobody (QEMU's tls-authz denies by default).
     */
    public static final List<String> TLS_ALLOW_DEFAULT = List.of();
    public static final Setting<List<String>> TLS_ALLOW = Setting.of(TLS_ALLOW_PROP_NAME, "NAME[,NAME...]",
            "names separated by commas", TLS_ALLOW_DEFAULT, Configuration::peerNames, Configuration::joined,
            "peer certificate names (DNS or IP subject alternative names) allowed; none: a source allows the host"
                    + " it connects to, a destination nobody");

    public static final String TLS_PROVIDER_PROP_NAME = "ferry.tls-provider";
    public static final TlsProvider TLS_PROVIDER_DEFAULT = TlsProvider.AUTO;
    public static final Setting<TlsProvider> TLS_PROVIDER = Setting.choice(TLS_PROVIDER_PROP_NAME, TlsProvider.class,
            TLS_PROVIDER_DEFAULT, "which TLS implementation: auto is OpenSSL (BoringSSL) where it loads, else the JDK's");

    public static final String MIGRATION_ID_PROP_NAME = "ferry.migration-id";
    /** The nil UUID: no id given, so any migration (a destination without one accepts whatever the source says). */
    public static final UUID MIGRATION_ID_DEFAULT = new UUID(0, 0);
    public static final Setting<UUID> MIGRATION_ID = Setting.of(MIGRATION_ID_PROP_NAME, "UUID", "a UUID or none",
            MIGRATION_ID_DEFAULT, Configuration::migrationId, id -> id.equals(MIGRATION_ID_DEFAULT) ? "none" : id.toString(),
            "the id the manager gave this migration, the same on both sides; a connection for another is refused"
                    + " (QEMU validate-uuid)");

    public static final String INSECURE_PROP_NAME = "ferry.insecure";
    /** Off: a destination reachable from other hosts runs TLS unless told otherwise. */
    public static final boolean INSECURE_DEFAULT = false;
    /** A flag on the command line ({@code --insecure}): true when given. */
    public static final Setting<Boolean> INSECURE = Setting.choice(INSECURE_PROP_NAME, List.of(true, false),
            String::valueOf, INSECURE_DEFAULT,
            "let a destination listen on an address other than loopback without TLS (guest memory in clear text)");

    public static final String CONVERGENCE_PROP_NAME = "ferry.convergence";
    /**
     * Fail: a stalled migration ends with the guest running on the source as before, at its own
     * pace, as KubeVirt's completion timeout aborts; slowing the guest, running it ahead of its
     * memory, or pausing it past the limit are the manager's to choose.
     */
    public static final ConvergencePolicy CONVERGENCE_DEFAULT = ConvergencePolicy.FAIL;
    public static final Setting<ConvergencePolicy> CONVERGENCE = Setting.choice(CONVERGENCE_PROP_NAME,
            ConvergencePolicy.class, CONVERGENCE_DEFAULT,
            "pre-copy that stalls (the guest dirties about as fast as the link drains): fail, switch to postcopy,"
                    + " throttle the guest (auto-converge) or force the stop-and-copy");

    public static final String PROGRESS_PROP_NAME = "ferry.progress";
    public static final ProgressFormat PROGRESS_DEFAULT = ProgressFormat.AUTO;
    public static final Setting<ProgressFormat> PROGRESS = Setting.choice(PROGRESS_PROP_NAME, ProgressFormat.class,
            PROGRESS_DEFAULT, "auto: a status line on a terminal; json: also one JSON object per line while it runs"
                    + " (stdout, or progress-file); none");

    public static final String PROGRESS_FILE_PROP_NAME = "ferry.progress-file";
    public static final String PROGRESS_FILE_DEFAULT = "-";
    public static final Setting<String> PROGRESS_FILE = Setting.of(PROGRESS_FILE_PROP_NAME, "FILE", "a path, or - for stdout",
            PROGRESS_FILE_DEFAULT, text -> {
                if (text.isEmpty()) {
                    throw new IllegalArgumentException();
                }
                return text;
            }, f -> f, "where --progress json writes its lines; - is stdout");

    public static final String METRICS_PORT_PROP_NAME = "ferry.metrics-port";
    /** Off: serving metrics is a port the operator opens. */
    public static final int METRICS_PORT_DEFAULT = -1;
    public static final Setting<Integer> METRICS_PORT = Setting.integer(METRICS_PORT_PROP_NAME, METRICS_PORT_DEFAULT, -1,
            65535, "serve the meters as Prometheus text on http://127.0.0.1:PORT/metrics; 0 picks a free port, -1 none");

    public static final String QEMU_QMP_PROP_NAME = "ferry.qemu-qmp";
    public static final Setting<Optional<Path>> QEMU_QMP = Setting.of(QEMU_QMP_PROP_NAME, "PATH", "a path or none",
            Optional.empty(), Configuration::file, Configuration::fileName,
            "the QMP socket (-qmp unix:PATH,server=on) of the QEMU whose guest this side migrates; needs --qemu-ram");

    public static final String QEMU_RAM_PROP_NAME = "ferry.qemu-ram";
    public static final Setting<Optional<Path>> QEMU_RAM = Setting.of(QEMU_RAM_PROP_NAME, "FILE", "a path or none",
            Optional.empty(), Configuration::file, Configuration::fileName,
            "that QEMU's guest RAM: the mem-path of its memory-backend-file,share=on (in /dev/shm)");

    public static final String QEMU_TIMEOUT_PROP_NAME = "ferry.qemu-timeout";
    /** Saving or loading a small guest's devices takes milliseconds; a QEMU silent for this long is stuck. */
    public static final long QEMU_TIMEOUT_DEFAULT = 10_000;
    public static final Setting<Long> QEMU_TIMEOUT = Setting.number(QEMU_TIMEOUT_PROP_NAME, QEMU_TIMEOUT_DEFAULT, 1,
            Long.MAX_VALUE, "MS", "the bound on every wait for QEMU: a QMP reply, an event, the device state");

    private static final List<Setting<?>> SETTINGS = List.of(MODE, POSTCOPY_AFTER_ROUNDS, DOWNTIME_LIMIT, MAX_BANDWIDTH,
            MAX_ROUNDS, TIME_LIMIT, CONVERGENCE, CHANNELS, STAGES, COMPRESSION, XBZRLE_CACHE_SIZE, DEDUP_INDEX_SIZE, ZSTD_LEVEL, PEER_TIMEOUT,
            RECOVER_TIMEOUT, FAULT_MECHANISM, PREALLOC, MAX_MEMORY, MAX_PENDING, HANDSHAKE_TIMEOUT, LISTEN, ACCEPT_TIMEOUT,
            TLS_CERT, TLS_KEY, TLS_CA, TLS_ALLOW, TLS_PROVIDER, MIGRATION_ID, INSECURE, PROGRESS, PROGRESS_FILE, METRICS_PORT,
            QEMU_QMP, QEMU_RAM, QEMU_TIMEOUT);

    private Configuration() {
    }

    /** Every setting, in the order {@code ferry --help} lists them. */
    public static List<Setting<?>> settings() {
        return SETTINGS;
    }

    /** {@code auto}, {@code none}, or stage names separated by commas. */
    private static Set<Capability> stages(String text) {
        if (text.equals("auto")) {
            return STAGES_DEFAULT;
        }
        EnumSet<Capability> stages = EnumSet.noneOf(Capability.class);
        if (!text.equals("none")) {
            for (String name : text.split(",")) {
                Capability stage = Capability.byName(name.trim());
                if (!STAGE_CAPABILITIES.contains(stage)) {
                    throw new IllegalArgumentException(name + " is not a stage");
                }
                stages.add(stage);
            }
        }
        return Collections.unmodifiableSet(stages);
    }

    /** The wire names in the capabilities' order, or {@code none}. */
    private static String names(Set<Capability> capabilities) {
        return capabilities.isEmpty() ? "none" : EnumSet.copyOf(capabilities).stream().map(Capability::wireName)
                .collect(Collectors.joining(","));
    }

    private static Optional<Path> file(String text) {
        return text.equals("none") ? Optional.empty() : Optional.of(Path.of(text));
    }

    private static String fileName(Optional<Path> file) {
        return file.map(Path::toString).orElse("none");
    }

    private static List<String> peerNames(String text) {
        if (text.equals("none")) {
            return List.of();
        }
        List<String> names = new java.util.ArrayList<>();
        for (String name : text.split(",")) {
            if (name.isBlank()) {
                throw new IllegalArgumentException("an empty name");
            }
            names.add(name.trim());
        }
        return List.copyOf(names);
    }

    private static String joined(List<String> names) {
        return names.isEmpty() ? "none" : String.join(",", names);
    }

    private static UUID migrationId(String text) {
        return text.equals("none") ? MIGRATION_ID_DEFAULT : UUID.fromString(text);
    }

    private static InetSocketAddress address(String text) {
        int colon = text.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("no HOST:");
        }
        return new InetSocketAddress(text.substring(0, colon), Integer.parseInt(text.substring(colon + 1)));
    }
}
