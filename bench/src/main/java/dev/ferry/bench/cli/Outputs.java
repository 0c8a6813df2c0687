package dev.ferry.bench.cli;

import dev.ferry.core.Configuration;
import dev.ferry.core.ProgressFormat;

/**
 * What a command shows while it runs, as its settings give it: the progress and where its JSON
 * lines go, and the port the meters are served on.
 */
record Outputs(ProgressFormat progress, String progressFile, int metricsPort) {
    static Outputs of(ParsedOptions o) {
        return new Outputs(o.value(Configuration.PROGRESS), o.value(Configuration.PROGRESS_FILE),
                o.value(Configuration.METRICS_PORT));
    }
}
