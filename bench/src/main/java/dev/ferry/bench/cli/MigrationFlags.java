package dev.ferry.bench.cli;

import dev.ferry.core.Capability;
import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationParameters;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/** The migration flags shared by {@code bench} and {@code source}, turned into parameters. */
final class MigrationFlags {
    static final Set<String> VALUED = Set.of("mode", "downtime-limit", "max-bandwidth", "max-rounds", "time-limit",
            "stages", "xbzrle-cache-size", "zstd-level", "peer-timeout");

    private MigrationFlags() {
    }

    static MigrationParameters parameters(Options o) {
        MigrationParameters.Builder b = MigrationParameters.builder();
        try {
            b.mode(MigrationMode.valueOf(o.get("mode", "precopy").toUpperCase(Locale.ROOT)));
        } catch (IllegalArgumentException e) {
            throw new UsageException("--mode takes precopy, postcopy or hybrid, got '" + o.get("mode") + "'");
        }
        if (b.build().mode() != MigrationMode.PRECOPY) {
            throw new UsageException("--mode " + o.get("mode") + " is not implemented yet; only precopy is");
        }
        try {
            b.downtimeLimitMillis(o.getLong("downtime-limit", 300))
                    .maxBandwidth(o.getLong("max-bandwidth", 0))
                    .maxRounds((int) o.getLong("max-rounds", 30))
                    .totalTimeLimitMillis(o.getLong("time-limit", 0))
                    .xbzrleCacheSize(o.getSize("xbzrle-cache-size", 64L << 20))
                    .zstdLevel((int) o.getLong("zstd-level", 1))
                    .peerTimeoutMillis(o.getLong("peer-timeout", 10_000));
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        b.capabilities(stages(o.get("stages", "zero")));
        return b.build();
    }

    /** {@code none}, or a comma-separated subset of the stage names. */
    static Set<Capability> stages(String spec) {
        EnumSet<Capability> set = EnumSet.noneOf(Capability.class);
        if (spec.equals("none")) {
            return set;
        }
        for (String name : spec.split(",")) {
            try {
                Capability c = Capability.byName(name.trim());
                if (c == Capability.DEDUP || c == Capability.POSTCOPY) {
                    throw new IllegalArgumentException();
                }
                set.add(c);
            } catch (IllegalArgumentException e) {
                throw new UsageException("--stages takes none or a list of zero,xbzrle,lz4,zstd; got '" + name + "'");
            }
        }
        return set;
    }
}
