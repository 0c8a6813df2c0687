package dev.ferry.bench.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.MigrationProgress;
import dev.ferry.core.MigrationState;
import dev.ferry.core.ReportJson;
import dev.ferry.core.RoundRecord;
import java.util.ArrayList;
import java.util.List;

/**
 * When each part of a migration happened, as a listener heard it, for the report's time axis:
 * the setup (start until the bulk round began), each round's end, and the pause (the state
 * that stops the guest: stop-and-copy or post-copy). Times are milliseconds since this was made,
 * just before the migration started; everything else goes on to {@code next}.
 */
final class Timeline implements MigrationListener {
    private final MigrationListener next;
    private final long start = System.nanoTime();
    private final List<Double> roundEnds = new ArrayList<>();
    private double setupMs = Double.NaN;
    private double pausedAtMs = Double.NaN;

    Timeline(MigrationListener next) {
        this.next = next;
    }

    @Override
    public void onState(MigrationState state) {
        double at = sinceStart();
        synchronized (this) {
            if (state != MigrationState.SETUP && Double.isNaN(setupMs)) {
                setupMs = at;
            }
            if ((state == MigrationState.STOP_AND_COPY || state == MigrationState.POSTCOPY) && Double.isNaN(pausedAtMs)) {
                pausedAtMs = at;
            }
        }
        next.onState(state);
    }

    @Override
    public void onRound(RoundRecord round) {
        double at = sinceStart();
        synchronized (this) {
            roundEnds.add(at);
        }
        next.onRound(round);
    }

    @Override
    public void onProgress(MigrationProgress progress) {
        next.onProgress(progress);
    }

    /** {@code {"setupMs", "pausedAtMs", "roundEndsMs": [...]}}; a part that did not happen is null. */
    synchronized ObjectNode toJsonNode() {
        ObjectNode json = ReportJson.object();
        ReportJson.put(json, "setupMs", setupMs);
        ReportJson.put(json, "pausedAtMs", pausedAtMs);
        ArrayNode ends = json.putArray("roundEndsMs");
        roundEnds.forEach(end -> ends.add(Math.round(end * 1000) / 1000.0));
        return json;
    }

    private double sinceStart() {
        return (System.nanoTime() - start) / 1e6;
    }
}
