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
            "stages", "compression", "xbzrle-cache-size", "postcopy-after-rounds", "recover-timeout", "zstd-level", "peer-timeout");

    /** The default stages: zero pages and XBZRLE always, LZ4 where the adaptive choice finds it pays. */
    static final Set<Capability> AUTO_STAGES = EnumSet.of(Capability.ZERO_PAGES, Capability.XBZRLE, Capability.LZ4);

    private MigrationFlags() {
    }

    static MigrationParameters parameters(Options o) {
        MigrationParameters.Builder b = MigrationParameters.builder();
        try {
            b.mode(MigrationMode.valueOf(o.get("mode", "precopy").toUpperCase(Locale.ROOT)));
        } catch (IllegalArgumentException e) {
            throw new UsageException("--mode takes precopy, postcopy or hybrid, got '" + o.get("mode") + "'");
        }
        try {
            b.downtimeLimitMillis(o.getLong("downtime-limit", 300))
                    .maxBandwidth(o.getLong("max-bandwidth", 0))
                    .maxRounds((int) o.getLong("max-rounds", 30))
                    .totalTimeLimitMillis(o.getLong("time-limit", 0))
                    .xbzrleCacheSize(o.getSize("xbzrle-cache-size", 64L << 20))
                    .zstdLevel((int) o.getLong("zstd-level", 1))
                    .peerTimeoutMillis(o.getLong("peer-timeout", 10_000))
                    .postcopyAfterRounds((int) o.getLong("postcopy-after-rounds", -1));
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        String stages = o.get("stages", "auto");
        EnumSet<Capability> capabilities = EnumSet.noneOf(Capability.class);
        capabilities.addAll(stages.equals("auto") ? AUTO_STAGES : stages(stages));
        if (b.build().mode() != MigrationMode.PRECOPY) {
            capabilities.add(Capability.POSTCOPY);
        }
        b.capabilities(capabilities);
        switch (o.get("compression", "adaptive")) {
            case "adaptive" -> b.adaptiveCompression(true);
            case "always" -> b.adaptiveCompression(false);
            default -> throw new UsageException("--compression takes adaptive or always, got '" + o.get("compression") + "'");
        }
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
                if (c == Capability.POSTCOPY) {
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
