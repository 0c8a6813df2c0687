package dev.ferry.bench.cli;

import dev.ferry.core.MigrationListener;
import dev.ferry.core.MigrationState;
import dev.ferry.core.RoundRecord;
import java.io.PrintStream;
import java.util.Locale;

/** One self-rewriting status line on a terminal; silent when the output is not one. */
final class ProgressDisplay implements MigrationListener {
    private final PrintStream out;
    private final boolean enabled;
    private volatile double lastExpectedMs = -1;
    private volatile long lastDirty;

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
    public void onRound(RoundRecord round) {
        lastExpectedMs = round.expectedDowntimeMs();
        lastDirty = round.dirtyPages();
    }

    @Override
    public void onProgress(long bytesSent, int round, long pagesLeftInRound) {
        if (!enabled) {
            return;
        }
        out.print(String.format(Locale.ROOT, "\r\033[K%,.1f MB sent | round %d | %,d pages left | dirty %,d | expected downtime %s",
                bytesSent / 1e6, round, pagesLeftInRound, lastDirty,
                lastExpectedMs < 0 ? "-" : String.format(Locale.ROOT, "%.1f ms", lastExpectedMs)));
        out.flush();
    }
}
