package dev.ferry.bench.cli;

import dev.ferry.core.MigrationListener;
import dev.ferry.core.MigrationProgress;
import dev.ferry.core.MigrationState;
import java.io.PrintStream;
import java.util.Locale;

/** One self-rewriting status line on a terminal, for people; silent when the output is not one. */
final class ProgressDisplay implements MigrationListener {
    private final PrintStream out;
    private final boolean enabled;

    ProgressDisplay(PrintStream out, boolean enabled) {
        this.out = out;
        this.enabled = enabled;
    }

    static ProgressDisplay forConsole() {
        return new ProgressDisplay(System.err, System.console() != null && System.console().isTerminal());
    }

    @Override
    public void onState(MigrationState state) {
        if (enabled && state.isTerminal()) {
            out.print("\r\033[K");
            out.flush();
        }
    }

    @Override
    public void onProgress(MigrationProgress p) {
        if (!enabled || p.state().isTerminal()) {
            return;
        }
        out.print(String.format(Locale.ROOT, "\r\033[K%s round %d | %,.1f MB sent | %,.1f MB left | dirty %,.1f MB/s"
                        + " | %,.1f MB/s | expected downtime %s%s", p.state(), p.round(), p.transferredBytes() / 1e6,
                p.remainingBytes() / 1e6, p.dirtyRateBytesPerSec() / 1e6, p.throughputBytesPerSec() / 1e6,
                p.expectedDowntimeMs() < 0 ? "-" : String.format(Locale.ROOT, "%.1f ms", p.expectedDowntimeMs()),
                p.throttlePercent() > 0 ? " | throttled " + p.throttlePercent() + "%" : ""));
        out.flush();
    }
}
