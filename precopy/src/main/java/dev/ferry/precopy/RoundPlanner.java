package dev.ferry.precopy;

import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationParameters;

/**
 * Decides after each round whether to send another or to switch over.
 *
 * <ul>
 *   <li>Pre-copy: stop and copy when the expected downtime fits {@code downtime-limit}, or when the
 *       round or time limit is reached (the last estimate is then reported as it was).</li>
 *   <li>Post-copy: switch to post-copy after the bulk round.</li>
 *   <li>Hybrid: stop and copy when it converged; switch to post-copy once it cannot: the dirty set
 *       did not shrink by a tenth over the last round (the guest dirties as fast as the link
 *       drains), {@code postcopy-after-rounds} rounds were sent, a limit was reached, or the
 *       caller asked for it.</li>
 * </ul>
 */
public final class RoundPlanner {
    /** What to do after a round. */
    public enum Step { ITERATE, SWITCH_CONVERGED, SWITCH_ROUND_LIMIT, SWITCH_TIME_LIMIT, SWITCH_POSTCOPY }

    /** The dirty set must shrink below this share of the previous one to count as converging. */
    static final double CONVERGING = 0.9;

    private final MigrationMode mode;
    private final long downtimeLimitMillis;
    private final int maxRounds;
    private final long totalTimeLimitNanos;
    private final int postcopyAfterRounds;

    public RoundPlanner(MigrationParameters params) {
        this.mode = params.mode();
        this.downtimeLimitMillis = params.downtimeLimitMillis();
        this.maxRounds = params.maxRounds();
        this.totalTimeLimitNanos = params.totalTimeLimitMillis() * 1_000_000L;
        this.postcopyAfterRounds = params.postcopyAfterRounds();
    }

    /**
     * @param roundsDone         rounds sent so far, the bulk round included
     * @param expectedDowntimeMs the estimate after the last round
     * @param elapsedNanos       time since the migration started
     * @param dirtyPages         pages dirty after the last round
     * @param previousDirtyPages pages dirty after the round before it (-1 after the bulk round)
     * @param postcopyRequested  whether the caller asked to switch to post-copy now
     */
    public Step next(int roundsDone, double expectedDowntimeMs, long elapsedNanos, long dirtyPages,
            long previousDirtyPages, boolean postcopyRequested) {
        if (mode == MigrationMode.POSTCOPY) {
            return Step.SWITCH_POSTCOPY;
        }
        if (expectedDowntimeMs <= downtimeLimitMillis) {
            return Step.SWITCH_CONVERGED;
        }
        boolean hybrid = mode == MigrationMode.HYBRID;
        if (postcopyRequested) {
            return Step.SWITCH_POSTCOPY;
        }
        if (roundsDone >= maxRounds) {
            return hybrid ? Step.SWITCH_POSTCOPY : Step.SWITCH_ROUND_LIMIT;
        }
        if (totalTimeLimitNanos > 0 && elapsedNanos >= totalTimeLimitNanos) {
            return hybrid ? Step.SWITCH_POSTCOPY : Step.SWITCH_TIME_LIMIT;
        }
        if (hybrid) {
            if (postcopyAfterRounds > 0 && roundsDone >= postcopyAfterRounds) {
                return Step.SWITCH_POSTCOPY;
            }
            if (previousDirtyPages >= 0 && dirtyPages >= CONVERGING * previousDirtyPages) {
                return Step.SWITCH_POSTCOPY;
            }
        }
        return Step.ITERATE;
    }
}
