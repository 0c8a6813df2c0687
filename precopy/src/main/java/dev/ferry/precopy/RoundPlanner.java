package dev.ferry.precopy;

import dev.ferry.core.MigrationParameters;

/**
 * Decides after each round whether to send another or to switch over: switch when the expected
 * downtime fits {@code downtime-limit}, or when the round or time limit is reached (the last
 * estimate is then reported as it was, even above the limit).
 */
public final class RoundPlanner {
    /** What to do after a round. */
    public enum Step { ITERATE, SWITCH_CONVERGED, SWITCH_ROUND_LIMIT, SWITCH_TIME_LIMIT }

    private final long downtimeLimitMillis;
    private final int maxRounds;
    private final long totalTimeLimitNanos;

    public RoundPlanner(MigrationParameters params) {
        this.downtimeLimitMillis = params.downtimeLimitMillis();
        this.maxRounds = params.maxRounds();
        this.totalTimeLimitNanos = params.totalTimeLimitMillis() * 1_000_000L;
    }

    /**
     * @param roundsDone         rounds sent so far, the bulk round included
     * @param expectedDowntimeMs the estimate after the last round
     * @param elapsedNanos       time since the migration started
     */
    public Step next(int roundsDone, double expectedDowntimeMs, long elapsedNanos) {
        if (expectedDowntimeMs <= downtimeLimitMillis) {
            return Step.SWITCH_CONVERGED;
        }
        if (roundsDone >= maxRounds) {
            return Step.SWITCH_ROUND_LIMIT;
        }
        if (totalTimeLimitNanos > 0 && elapsedNanos >= totalTimeLimitNanos) {
            return Step.SWITCH_TIME_LIMIT;
        }
        return Step.ITERATE;
    }
}
