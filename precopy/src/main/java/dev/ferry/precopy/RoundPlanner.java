package dev.ferry.precopy;

import dev.ferry.core.ConvergencePolicy;
import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationParameters;

/**
 * Decides after each round whether to send another or to switch over. Clock-free: it is told the
 * time; it keeps only the streak of stalled rounds and how far it throttled the guest.
 *
 * <ul>
 *   <li>Pre-copy: stop and copy when the expected downtime fits {@code downtime-limit}, or when the
 *       round or time limit is reached (the last estimate is then reported as it was). Once it
 *       stalls ({@link StallDetector}) the convergence policy decides: fail, switch to post-copy,
 *       throttle the guest (20%, then 10% more at every stalled round, up to 99%; then fail), or
 *       force the stop-and-copy.</li>
 *   <li>Post-copy: switch to post-copy after the bulk round.</li>
 *   <li>Hybrid: stop and copy when it converged; switch to post-copy once it cannot: the dirty set
 *       did not shrink by a tenth over the last round (the guest dirties as fast as the link
 *       drains), {@code postcopy-after-rounds} rounds were sent, a limit was reached, or the
 *       caller asked for it.</li>
 * </ul>
 */
public final class RoundPlanner {
    /** What to do after a round. */
    public enum Step {
        ITERATE, THROTTLE, SWITCH_CONVERGED, SWITCH_ROUND_LIMIT, SWITCH_TIME_LIMIT, SWITCH_POSTCOPY, SWITCH_STALLED,
        FAIL_STALLED
    }

    /** The dirty set must shrink below this share of the previous one to count as converging. */
    static final double CONVERGING = 0.9;
    /** QEMU's cpu-throttle-initial, cpu-throttle-increment and the most it throttles. */
    static final int THROTTLE_INITIAL = 20;
    static final int THROTTLE_INCREMENT = 10;
    static final int THROTTLE_MAX = 99;

    private final MigrationMode mode;
    private final ConvergencePolicy policy;
    private volatile long downtimeLimitMillis;
    private final int maxRounds;
    private final long totalTimeLimitNanos;
    private final int postcopyAfterRounds;
    private int stalledStreak;
    private int stalledRounds;
    private int throttlePercent;
    private boolean throttleRefused;

    public RoundPlanner(MigrationParameters params) {
        this.mode = params.mode();
        this.policy = params.convergence();
        this.downtimeLimitMillis = params.downtimeLimitMillis();
        this.maxRounds = params.maxRounds();
        this.totalTimeLimitNanos = params.totalTimeLimitMillis() * 1_000_000L;
        this.postcopyAfterRounds = params.postcopyAfterRounds();
    }

    /** Changes the downtime limit for the rounds still to be decided ({@code migrate-set-parameters}). */
    public void downtimeLimitMillis(long value) {
        this.downtimeLimitMillis = value;
    }

    public long downtimeLimitMillis() {
        return downtimeLimitMillis;
    }

    /**
     * @param roundsDone         rounds sent so far, the bulk round included
     * @param expectedDowntimeMs the estimate after the last round
     * @param elapsedNanos       time since the migration started
     * @param dirtyPages         pages dirty after the last round
     * @param previousDirtyPages pages dirty after the round before it (-1 after the bulk round)
     * @param sentPages          pages the last round sent (0 when unknown: no stall is detected)
     * @param postcopyRequested  whether the caller asked to switch to post-copy now
     */
    public Step next(int roundsDone, double expectedDowntimeMs, long elapsedNanos, long dirtyPages,
            long previousDirtyPages, long sentPages, boolean postcopyRequested) {
        if (mode == MigrationMode.POSTCOPY) {
            return Step.SWITCH_POSTCOPY;
        }
        long limit = downtimeLimitMillis;
        if (expectedDowntimeMs <= limit) {
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
            return Step.ITERATE;
        }
        if (!StallDetector.stalledRound(dirtyPages, sentPages, expectedDowntimeMs, limit, maxRounds - roundsDone)) {
            stalledStreak = 0;
            return Step.ITERATE;
        }
        stalledRounds++;
        if (++stalledStreak < StallDetector.ROUNDS) {
            return Step.ITERATE;
        }
        return switch (policy) {
            case FAIL -> Step.FAIL_STALLED;
            case POSTCOPY -> Step.SWITCH_POSTCOPY;
            case FORCE -> Step.SWITCH_STALLED;
            case THROTTLE -> {
                if (throttleRefused || throttlePercent >= THROTTLE_MAX) {
                    yield Step.FAIL_STALLED;
                }
                throttlePercent = throttlePercent == 0 ? THROTTLE_INITIAL
                        : Math.min(THROTTLE_MAX, throttlePercent + THROTTLE_INCREMENT);
                yield Step.THROTTLE;
            }
        };
    }

    /** The guest could not be throttled: the next stall fails. */
    public void throttleRefused() {
        throttleRefused = true;
        throttlePercent = 0;
    }

    /** How much a {@link Step#THROTTLE} asks the guest to slow down; 0 before any. */
    public int throttlePercent() {
        return throttlePercent;
    }

    /** Rounds that ended stalled so far. */
    public int stalledRounds() {
        return stalledRounds;
    }
}
