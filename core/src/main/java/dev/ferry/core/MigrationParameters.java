package dev.ferry.core;

import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;

/**
 * The knobs of one migration, the source's side of {@link Configuration}: each accessor names the
 * setting that holds its name, default, meaning and range. Immutable; derive variants with
 * {@link #toBuilder()}.
 */
public final class MigrationParameters {
    private final MigrationMode mode;
    private final long downtimeLimitMillis;
    private final long maxBandwidth;
    private final int maxRounds;
    private final long totalTimeLimitMillis;
    private final EnumSet<Capability> capabilities;
    private final boolean adaptiveCompression;
    private final long xbzrleCacheSize;
    private final long dedupIndexSize;
    private final int zstdLevel;
    private final int postcopyAfterRounds;
    private final long peerTimeoutMillis;
    private final long recoverTimeoutMillis;
    private final int channels;
    private final Optional<Path> tlsCert;
    private final Optional<Path> tlsKey;
    private final Optional<Path> tlsCa;
    private final List<String> tlsAllow;
    private final TlsProvider tlsProvider;
    private final UUID migrationId;
    private final ConvergencePolicy convergence;

    private MigrationParameters(Builder b) {
        this.mode = b.mode;
        this.downtimeLimitMillis = b.downtimeLimitMillis;
        this.maxBandwidth = b.maxBandwidth;
        this.maxRounds = b.maxRounds;
        this.totalTimeLimitMillis = b.totalTimeLimitMillis;
        this.capabilities = EnumSet.copyOf(b.capabilities);
        this.adaptiveCompression = b.adaptiveCompression;
        this.xbzrleCacheSize = b.xbzrleCacheSize;
        this.dedupIndexSize = b.dedupIndexSize;
        this.zstdLevel = b.zstdLevel;
        this.postcopyAfterRounds = b.postcopyAfterRounds;
        this.peerTimeoutMillis = b.peerTimeoutMillis;
        this.recoverTimeoutMillis = b.recoverTimeoutMillis;
        this.channels = b.channels;
        this.tlsCert = b.tlsCert;
        this.tlsKey = b.tlsKey;
        this.tlsCa = b.tlsCa;
        this.tlsAllow = b.tlsAllow;
        this.tlsProvider = b.tlsProvider;
        this.convergence = b.convergence;
        this.migrationId = b.migrationId;
    }

    /** The defaults: each setting's {@link Setting#value()}, its system property or built-in default. */
    public static MigrationParameters defaults() {
        return builder().build();
    }

    /** A builder holding the defaults. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding these parameters. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.mode = mode;
        b.downtimeLimitMillis = downtimeLimitMillis;
        b.maxBandwidth = maxBandwidth;
        b.maxRounds = maxRounds;
        b.totalTimeLimitMillis = totalTimeLimitMillis;
        b.capabilities = EnumSet.copyOf(capabilities);
        b.adaptiveCompression = adaptiveCompression;
        b.xbzrleCacheSize = xbzrleCacheSize;
        b.dedupIndexSize = dedupIndexSize;
        b.zstdLevel = zstdLevel;
        b.postcopyAfterRounds = postcopyAfterRounds;
        b.peerTimeoutMillis = peerTimeoutMillis;
        b.recoverTimeoutMillis = recoverTimeoutMillis;
        b.channels = channels;
        b.tlsCert = tlsCert;
        b.tlsKey = tlsKey;
        b.tlsCa = tlsCa;
        b.tlsAllow = tlsAllow;
        b.tlsProvider = tlsProvider;
        b.convergence = convergence;
        b.migrationId = migrationId;
        return b;
    }

    /** {@link Configuration#MODE}: pre-copy, post-copy or hybrid. */
    public MigrationMode mode() { return mode; }

    /** {@link Configuration#DOWNTIME_LIMIT}: the longest pause the switch-over may take, in ms. */
    public long downtimeLimitMillis() { return downtimeLimitMillis; }

    /** {@link Configuration#MAX_BANDWIDTH}: bytes per second on the wire, 0 for unlimited. */
    public long maxBandwidth() { return maxBandwidth; }

    /** {@link Configuration#MAX_ROUNDS}: rounds after which the source switches over whatever the estimate. */
    public int maxRounds() { return maxRounds; }

    /** {@link Configuration#TIME_LIMIT}: ms after which the source switches over whatever the estimate, 0 for none. */
    public long totalTimeLimitMillis() { return totalTimeLimitMillis; }

    /**
     * What the source offers (by default {@link Configuration#STAGES}); the handshake narrows it to
     * what both sides accept.
     */
    public Set<Capability> capabilities() { return EnumSet.copyOf(capabilities); }

    /** {@link Configuration#COMPRESSION}: whether the source decides by measurement whether to compress. */
    public boolean adaptiveCompression() { return adaptiveCompression; }

    /** {@link Configuration#XBZRLE_CACHE_SIZE}: bytes of pages kept as last sent. */
    public long xbzrleCacheSize() { return xbzrleCacheSize; }

    /** {@link Configuration#DEDUP_INDEX_SIZE}: bytes of the source's content index. */
    public long dedupIndexSize() { return dedupIndexSize; }

    /** {@link Configuration#ZSTD_LEVEL}: the zstd compression level. */
    public int zstdLevel() { return zstdLevel; }

    /**
     * {@link Configuration#POSTCOPY_AFTER_ROUNDS}: in hybrid mode, switch to post-copy after this
     * many pre-copy rounds; -1 to let the estimator decide.
     */
    public int postcopyAfterRounds() { return postcopyAfterRounds; }

    /** {@link Configuration#PEER_TIMEOUT}: a peer silent this long while it owes us something is dead. */
    public long peerTimeoutMillis() { return peerTimeoutMillis; }

    /** {@link Configuration#RECOVER_TIMEOUT}: how long both sides wait for a reconnect after a link lost during post-copy. */
    public long recoverTimeoutMillis() { return recoverTimeoutMillis; }

    /** {@link Configuration#CHANNELS}: page channels, TCP connections that carry pages side by side. */
    public int channels() { return channels; }

    /** {@link Configuration#TLS_CERT}: this side's certificate chain; TLS is on when it, the key and the CA are given. */
    public Optional<Path> tlsCert() { return tlsCert; }

    /** {@link Configuration#TLS_KEY}: the private key of {@link #tlsCert()}. */
    public Optional<Path> tlsKey() { return tlsKey; }

    /** {@link Configuration#TLS_CA}: what the destination's certificate must chain to. */
    public Optional<Path> tlsCa() { return tlsCa; }

    /** {@link Configuration#TLS_ALLOW}: the destination names allowed; empty: the host the source connects to. */
    public List<String> tlsAllow() { return tlsAllow; }

    /** {@link Configuration#TLS_PROVIDER}: which TLS implementation. */
    public TlsProvider tlsProvider() { return tlsProvider; }

    /** {@link Configuration#MIGRATION_ID}: the id both sides were given; the nil UUID when none was. */
    public UUID migrationId() { return migrationId; }

    /** {@link Configuration#CONVERGENCE}: what a stalled pre-copy does. */
    public ConvergencePolicy convergence() { return convergence; }

    @Override
    public String toString() {
        return String.join(" ", entry(Configuration.MODE, mode), entry(Configuration.DOWNTIME_LIMIT, downtimeLimitMillis),
                entry(Configuration.MAX_BANDWIDTH, maxBandwidth), entry(Configuration.MAX_ROUNDS, maxRounds),
                entry(Configuration.TIME_LIMIT, totalTimeLimitMillis), entry(Configuration.STAGES, capabilities),
                entry(Configuration.COMPRESSION, adaptiveCompression),
                entry(Configuration.XBZRLE_CACHE_SIZE, xbzrleCacheSize),
                entry(Configuration.DEDUP_INDEX_SIZE, dedupIndexSize), entry(Configuration.ZSTD_LEVEL, zstdLevel),
                entry(Configuration.POSTCOPY_AFTER_ROUNDS, postcopyAfterRounds),
                entry(Configuration.PEER_TIMEOUT, peerTimeoutMillis),
                entry(Configuration.RECOVER_TIMEOUT, recoverTimeoutMillis), entry(Configuration.CHANNELS, channels),
                entry(Configuration.TLS_CERT, tlsCert), entry(Configuration.TLS_KEY, tlsKey),
                entry(Configuration.TLS_CA, tlsCa), entry(Configuration.TLS_ALLOW, tlsAllow),
                entry(Configuration.TLS_PROVIDER, tlsProvider), entry(Configuration.MIGRATION_ID, migrationId),
                entry(Configuration.CONVERGENCE, convergence));
    }

    private static <T> String entry(Setting<T> setting, T value) {
        return setting.name() + "=" + setting.format(value);
    }

    /**
     * Builds {@link MigrationParameters}, starting from each setting's {@link Setting#value()};
     * every setter checks its argument against its setting's range.
     */
    public static final class Builder {
        private MigrationMode mode = Configuration.MODE.value();
        private long downtimeLimitMillis = Configuration.DOWNTIME_LIMIT.value();
        private long maxBandwidth = Configuration.MAX_BANDWIDTH.value();
        private int maxRounds = Configuration.MAX_ROUNDS.value();
        private long totalTimeLimitMillis = Configuration.TIME_LIMIT.value();
        private EnumSet<Capability> capabilities = copy(Configuration.STAGES.value());
        private boolean adaptiveCompression = Configuration.COMPRESSION.value();
        private long xbzrleCacheSize = Configuration.XBZRLE_CACHE_SIZE.value();
        private long dedupIndexSize = Configuration.DEDUP_INDEX_SIZE.value();
        private int zstdLevel = Configuration.ZSTD_LEVEL.value();
        private int postcopyAfterRounds = Configuration.POSTCOPY_AFTER_ROUNDS.value();
        private long peerTimeoutMillis = Configuration.PEER_TIMEOUT.value();
        private long recoverTimeoutMillis = Configuration.RECOVER_TIMEOUT.value();
        private int channels = Configuration.CHANNELS.value();
        private Optional<Path> tlsCert = Configuration.TLS_CERT.value();
        private Optional<Path> tlsKey = Configuration.TLS_KEY.value();
        private Optional<Path> tlsCa = Configuration.TLS_CA.value();
        private List<String> tlsAllow = Configuration.TLS_ALLOW.value();
        private TlsProvider tlsProvider = Configuration.TLS_PROVIDER.value();
        private UUID migrationId = Configuration.MIGRATION_ID.value();
        private ConvergencePolicy convergence = Configuration.CONVERGENCE.value();

        private Builder() {
        }

        public Builder mode(MigrationMode value) {
            this.mode = Configuration.MODE.check(value);
            return this;
        }

        public Builder downtimeLimitMillis(long value) {
            this.downtimeLimitMillis = Configuration.DOWNTIME_LIMIT.check(value);
            return this;
        }

        public Builder maxBandwidth(long value) {
            this.maxBandwidth = Configuration.MAX_BANDWIDTH.check(value);
            return this;
        }

        public Builder maxRounds(int value) {
            this.maxRounds = Configuration.MAX_ROUNDS.check(value);
            return this;
        }

        public Builder totalTimeLimitMillis(long value) {
            this.totalTimeLimitMillis = Configuration.TIME_LIMIT.check(value);
            return this;
        }

        /** Any capabilities, not only stages: post-copy, for one, is offered here. */
        public Builder capabilities(Set<Capability> value) {
            this.capabilities = copy(value);
            return this;
        }

        public Builder adaptiveCompression(boolean value) {
            this.adaptiveCompression = value;
            return this;
        }

        public Builder xbzrleCacheSize(long value) {
            this.xbzrleCacheSize = Configuration.XBZRLE_CACHE_SIZE.check(value);
            return this;
        }

        public Builder dedupIndexSize(long value) {
            this.dedupIndexSize = Configuration.DEDUP_INDEX_SIZE.check(value);
            return this;
        }

        public Builder zstdLevel(int value) {
            this.zstdLevel = Configuration.ZSTD_LEVEL.check(value);
            return this;
        }

        public Builder postcopyAfterRounds(int value) {
            this.postcopyAfterRounds = Configuration.POSTCOPY_AFTER_ROUNDS.check(value);
            return this;
        }

        public Builder peerTimeoutMillis(long value) {
            this.peerTimeoutMillis = Configuration.PEER_TIMEOUT.check(value);
            return this;
        }

        public Builder recoverTimeoutMillis(long value) {
            this.recoverTimeoutMillis = Configuration.RECOVER_TIMEOUT.check(value);
            return this;
        }

        public Builder channels(int value) {
            this.channels = Configuration.CHANNELS.check(value);
            return this;
        }

        public Builder convergence(ConvergencePolicy value) {
            this.convergence = Configuration.CONVERGENCE.check(value);
            return this;
        }

        /** Mutual TLS on every connection, with this certificate chain, its key, and the CAs the destination's must chain to. */
        public Builder tls(Path cert, Path key, Path ca) {
            this.tlsCert = Optional.of(cert);
            this.tlsKey = Optional.of(key);
            this.tlsCa = Optional.of(ca);
            return this;
        }

        public Builder tlsCert(Optional<Path> value) {
            this.tlsCert = Configuration.TLS_CERT.check(value);
            return this;
        }

        public Builder tlsKey(Optional<Path> value) {
            this.tlsKey = Configuration.TLS_KEY.check(value);
            return this;
        }

        public Builder tlsCa(Optional<Path> value) {
            this.tlsCa = Configuration.TLS_CA.check(value);
            return this;
        }

        public Builder tlsAllow(List<String> value) {
            this.tlsAllow = List.copyOf(Configuration.TLS_ALLOW.check(value));
            return this;
        }

        public Builder tlsProvider(TlsProvider value) {
            this.tlsProvider = Configuration.TLS_PROVIDER.check(value);
            return this;
        }

        public Builder migrationId(UUID value) {
            this.migrationId = Configuration.MIGRATION_ID.check(value);
            return this;
        }

        public MigrationParameters build() {
            return new MigrationParameters(this);
        }

        private static EnumSet<Capability> copy(Set<Capability> value) {
            EnumSet<Capability> copy = EnumSet.noneOf(Capability.class);
            copy.addAll(value);
            return copy;
        }
    }
}
