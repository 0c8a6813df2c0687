package dev.ferry.core;

import java.util.EnumSet;
import java.util.Set;

/**
 * The knobs of one migration. Names and defaults follow QEMU's migration parameters where QEMU
 * has one ({@code downtime-limit} 300 ms, {@code xbzrle-cache-size} 64 MiB); {@code max-bandwidth}
 * defaults to 0, unlimited, where QEMU caps at 128 MiB/s. Immutable; derive variants with
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
    private final int zstdLevel;
    private final int postcopyAfterRounds;
    private final long peerTimeoutMillis;
    private final long recoverTimeoutMillis;
    private final int channels;

    private MigrationParameters(Builder b) {
        this.mode = b.mode;
        this.downtimeLimitMillis = b.downtimeLimitMillis;
        this.maxBandwidth = b.maxBandwidth;
        this.maxRounds = b.maxRounds;
        this.totalTimeLimitMillis = b.totalTimeLimitMillis;
        this.capabilities = EnumSet.copyOf(b.capabilities);
        this.adaptiveCompression = b.adaptiveCompression;
        this.xbzrleCacheSize = b.xbzrleCacheSize;
        this.zstdLevel = b.zstdLevel;
        this.postcopyAfterRounds = b.postcopyAfterRounds;
        this.peerTimeoutMillis = b.peerTimeoutMillis;
        this.recoverTimeoutMillis = b.recoverTimeoutMillis;
        this.channels = b.channels;
    }

    /** The defaults. */
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
        b.zstdLevel = zstdLevel;
        b.postcopyAfterRounds = postcopyAfterRounds;
        b.peerTimeoutMillis = peerTimeoutMillis;
        b.recoverTimeoutMillis = recoverTimeoutMillis;
        b.channels = channels;
        return b;
    }

    /** Pre-copy, post-copy or hybrid. */
    public MigrationMode mode() { return mode; }

    /** {@code downtime-limit}: the longest pause the switch-over may take, in ms (default 300). */
    public long downtimeLimitMillis() { return downtimeLimitMillis; }

    /** {@code max-bandwidth}: bytes per second on the wire, 0 for unlimited (default). */
    public long maxBandwidth() { return maxBandwidth; }

    /** Rounds after which the source switches over whatever the estimate (default 30). */
    public int maxRounds() { return maxRounds; }

    /** Time after which the source switches over whatever the estimate, 0 for none (default). */
    public long totalTimeLimitMillis() { return totalTimeLimitMillis; }

    /** What the source offers; the handshake narrows it to what both sides accept. */
    public Set<Capability> capabilities() { return EnumSet.copyOf(capabilities); }

    /** Whether the source decides per round, by measurement, whether to compress. */
    public boolean adaptiveCompression() { return adaptiveCompression; }

    /** {@code xbzrle-cache-size}: bytes of pages kept as last sent (default 64 MiB). */
    public long xbzrleCacheSize() { return xbzrleCacheSize; }

    /** zstd compression level (default 1, as QEMU's {@code multifd-zstd-level}). */
    public int zstdLevel() { return zstdLevel; }

    /** In hybrid mode, switch to post-copy after this many pre-copy rounds; -1 to let the estimator decide. */
    public int postcopyAfterRounds() { return postcopyAfterRounds; }

    /** A peer silent this long while it owes us something is dead (default 10 s). */
    public long peerTimeoutMillis() { return peerTimeoutMillis; }

    /** How long both sides wait for a reconnect after a link lost during post-copy (default 60 s). */
    public long recoverTimeoutMillis() { return recoverTimeoutMillis; }

    /** Page channels: TCP connections that carry pages side by side, each with its own sending thread (default 2). */
    public int channels() { return channels; }

    @Override
    public String toString() {
        return "mode=" + mode + " downtime-limit=" + downtimeLimitMillis + "ms max-bandwidth=" + maxBandwidth
                + " max-rounds=" + maxRounds + " capabilities=" + capabilities;
    }

    /** Builds {@link MigrationParameters}; every setter checks its argument. */
    public static final class Builder {
        private MigrationMode mode = MigrationMode.PRECOPY;
        private long downtimeLimitMillis = 300;
        private long maxBandwidth = 0;
        private int maxRounds = 30;
        private long totalTimeLimitMillis = 0;
        private EnumSet<Capability> capabilities = EnumSet.of(Capability.ZERO_PAGES);
        private boolean adaptiveCompression = false;
        private long xbzrleCacheSize = 64L << 20;
        private int zstdLevel = 1;
        private int postcopyAfterRounds = -1;
        private long peerTimeoutMillis = 10_000;
        private long recoverTimeoutMillis = 60_000;
        private int channels = 2;

        private Builder() {
        }

        public Builder mode(MigrationMode value) {
            this.mode = java.util.Objects.requireNonNull(value);
            return this;
        }

        public Builder downtimeLimitMillis(long value) {
            this.downtimeLimitMillis = positive("downtime-limit", value);
            return this;
        }

        public Builder maxBandwidth(long value) {
            if (value < 0) {
                throw new IllegalArgumentException("max-bandwidth must be >= 0, got " + value);
            }
            this.maxBandwidth = value;
            return this;
        }

        public Builder maxRounds(int value) {
            this.maxRounds = (int) positive("max-rounds", value);
            return this;
        }

        public Builder totalTimeLimitMillis(long value) {
            if (value < 0) {
                throw new IllegalArgumentException("total time limit must be >= 0, got " + value);
            }
            this.totalTimeLimitMillis = value;
            return this;
        }

        public Builder capabilities(Set<Capability> value) {
            this.capabilities = value.isEmpty() ? EnumSet.noneOf(Capability.class) : EnumSet.copyOf(value);
            return this;
        }

        public Builder adaptiveCompression(boolean value) {
            this.adaptiveCompression = value;
            return this;
        }

        public Builder xbzrleCacheSize(long value) {
            this.xbzrleCacheSize = positive("xbzrle-cache-size", value);
            return this;
        }

        public Builder zstdLevel(int value) {
            if (value < -7 || value > 22) {
                throw new IllegalArgumentException("zstd level must be in -7..22, got " + value);
            }
            this.zstdLevel = value;
            return this;
        }

        public Builder postcopyAfterRounds(int value) {
            this.postcopyAfterRounds = value;
            return this;
        }

        public Builder peerTimeoutMillis(long value) {
            this.peerTimeoutMillis = positive("peer timeout", value);
            return this;
        }

        public Builder recoverTimeoutMillis(long value) {
            this.recoverTimeoutMillis = positive("recover-timeout", value);
            return this;
        }

        public Builder channels(int value) {
            if (value < 1 || value > 64) {
                throw new IllegalArgumentException("channels must be in 1..64, got " + value);
            }
            this.channels = value;
            return this;
        }

        public MigrationParameters build() {
            return new MigrationParameters(this);
        }

        private static long positive(String name, long value) {
            if (value <= 0) {
                throw new IllegalArgumentException(name + " must be > 0, got " + value);
            }
            return value;
        }
    }
}
