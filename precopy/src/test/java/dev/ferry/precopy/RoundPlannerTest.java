package dev.ferry.precopy;

import static dev.ferry.precopy.RoundPlanner.Step.ITERATE;
import static dev.ferry.precopy.RoundPlanner.Step.SWITCH_CONVERGED;
import static dev.ferry.precopy.RoundPlanner.Step.SWITCH_POSTCOPY;
import static dev.ferry.precopy.RoundPlanner.Step.SWITCH_ROUND_LIMIT;
import static dev.ferry.precopy.RoundPlanner.Step.SWITCH_TIME_LIMIT;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ferry.core.ConvergencePolicy;
import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationParameters;
import org.junit.jupiter.api.Test;

class RoundPlannerTest {
    private static final long SECOND = 1_000_000_000L;
    private final RoundPlanner planner = new RoundPlanner(MigrationParameters.builder()
            .downtimeLimitMillis(300).maxRounds(5).totalTimeLimitMillis(10_000).build());

    @Test
    void switchesOnceTheEstimateFitsTheLimit() {
        assertEquals(SWITCH_CONVERGED, planner.next(1, 300.0, 0, 0, -1, 0, false));
        assertEquals(SWITCH_CONVERGED, planner.next(1, 0.0, 0, 0, -1, 0, false));
        assertEquals(ITERATE, planner.next(1, 300.001, 0, 0, -1, 0, false));
        assertEquals(ITERATE, planner.next(1, Double.POSITIVE_INFINITY, 0, 0, -1, 0, false), "no measurement never converges");
    }

    @Test
    void switchesAtTheRoundLimitWhateverTheEstimate() {
        assertEquals(ITERATE, planner.next(4, 1e6, SECOND, 0, -1, 0, false));
        assertEquals(SWITCH_ROUND_LIMIT, planner.next(5, 1e6, SECOND, 0, -1, 0, false));
        assertEquals(SWITCH_ROUND_LIMIT, planner.next(6, Double.POSITIVE_INFINITY, SECOND, 0, -1, 0, false));
    }

    @Test
    void switchesAtTheTimeLimitWhateverTheEstimate() {
        assertEquals(ITERATE, planner.next(2, 1e6, 10 * SECOND - 1, 0, -1, 0, false));
        assertEquals(SWITCH_TIME_LIMIT, planner.next(2, 1e6, 10 * SECOND, 0, -1, 0, false));
    }

    @Test
    void convergenceIsCheckedFirstThenRoundsThenTime() {
        assertEquals(SWITCH_CONVERGED, planner.next(5, 10, 20 * SECOND, 0, -1, 0, false));
        assertEquals(SWITCH_ROUND_LIMIT, planner.next(5, 1e6, 20 * SECOND, 0, -1, 0, false));
    }

    @Test
    void aTimeLimitOfZeroIsNone() {
        RoundPlanner unlimited = new RoundPlanner(MigrationParameters.defaults());
        assertEquals(ITERATE, unlimited.next(29, 301, Long.MAX_VALUE, 0, -1, 0, false));
        assertEquals(SWITCH_ROUND_LIMIT, unlimited.next(30, 301, 0, 0, -1, 0, false), "default max-rounds is 30");
    }

    @Test
    void postcopySwitchesRightAfterTheBulkRound() {
        RoundPlanner postcopy = new RoundPlanner(MigrationParameters.builder().mode(MigrationMode.POSTCOPY).build());
        assertEquals(SWITCH_POSTCOPY, postcopy.next(1, 0.0, 0, 0, -1, 0, false), "even when a stop-and-copy would fit");
    }

    @Test
    void hybridSwitchesToPostcopyOnceTheDirtySetStopsShrinking() {
        RoundPlanner hybrid = new RoundPlanner(MigrationParameters.builder().mode(MigrationMode.HYBRID)
                .downtimeLimitMillis(300).maxRounds(30).build());
        assertEquals(ITERATE, hybrid.next(1, 5000, SECOND, 100_000, -1, 0, false), "one round says nothing of a trend");
        assertEquals(ITERATE, hybrid.next(2, 4000, SECOND, 89_999, 100_000, 0, false), "shrinking by more than a tenth");
        assertEquals(SWITCH_POSTCOPY, hybrid.next(3, 4000, SECOND, 81_000, 89_999, 0, false), "shrinking by less");
        assertEquals(SWITCH_CONVERGED, hybrid.next(3, 200, SECOND, 95_000, 90_000, 0, false), "converged still wins");
        assertEquals(SWITCH_POSTCOPY, hybrid.next(30, 4000, SECOND, 1, 100_000, 0, false), "the round limit hands over by post-copy");
    }

    @Test
    void hybridHonoursPostcopyAfterRoundsAndARequest() {
        RoundPlanner hybrid = new RoundPlanner(MigrationParameters.builder().mode(MigrationMode.HYBRID)
                .postcopyAfterRounds(3).build());
        assertEquals(ITERATE, hybrid.next(2, 4000, SECOND, 10, 100_000, 0, false));
        assertEquals(SWITCH_POSTCOPY, hybrid.next(3, 4000, SECOND, 10, 100_000, 0, false));
        assertEquals(SWITCH_POSTCOPY, planner.next(1, 4000, SECOND, 10, -1, 0, true), "a request switches even in pre-copy mode");
    }

    /** uniform:400 at 20 MB/s: every round finds as many pages dirty as it sent. */
    private static RoundPlanner.Step stalledRound(RoundPlanner p, int round) {
        return p.next(round, 10_000, round * SECOND, 60_000, 60_000, 60_000, false);
    }

    private static RoundPlanner withPolicy(ConvergencePolicy policy) {
        return new RoundPlanner(MigrationParameters.builder().downtimeLimitMillis(300).convergence(policy).build());
    }

    @Test
    void aStallNeedsTwoStalledRoundsInARowThenThePolicyDecides() {
        RoundPlanner fail = withPolicy(ConvergencePolicy.FAIL);
        assertEquals(ITERATE, stalledRound(fail, 1), "one stalled round is not a stall");
        assertEquals(ITERATE, fail.next(2, 10_000, SECOND, 30_000, 60_000, 60_000, false), "a shrinking round breaks the streak");
        assertEquals(ITERATE, stalledRound(fail, 3));
        assertEquals(RoundPlanner.Step.FAIL_STALLED, stalledRound(fail, 4));
        assertEquals(3, fail.stalledRounds());
        RoundPlanner force = withPolicy(ConvergencePolicy.FORCE);
        stalledRound(force, 1);
        assertEquals(RoundPlanner.Step.SWITCH_STALLED, stalledRound(force, 2));
        RoundPlanner postcopy = withPolicy(ConvergencePolicy.POSTCOPY);
        stalledRound(postcopy, 1);
        assertEquals(SWITCH_POSTCOPY, stalledRound(postcopy, 2));
    }

    @Test
    void throttlingStepsAsQemuDoesThenFails() {
        RoundPlanner throttle = withPolicy(ConvergencePolicy.THROTTLE);
        assertEquals(ITERATE, stalledRound(throttle, 1));
        int[] expected = {20, 30, 40, 50, 60, 70, 80, 90, 99};
        for (int i = 0; i < expected.length; i++) {
            assertEquals(RoundPlanner.Step.THROTTLE, stalledRound(throttle, 2 + i));
            assertEquals(expected[i], throttle.throttlePercent());
        }
        assertEquals(RoundPlanner.Step.FAIL_STALLED, stalledRound(throttle, 11), "99% and still stalled");
        RoundPlanner refused = withPolicy(ConvergencePolicy.THROTTLE);
        stalledRound(refused, 1);
        assertEquals(RoundPlanner.Step.THROTTLE, stalledRound(refused, 2));
        refused.throttleRefused();
        assertEquals(RoundPlanner.Step.FAIL_STALLED, stalledRound(refused, 3), "a guest that cannot be throttled fails");
    }

    @Test
    void theDowntimeLimitMayChangeBetweenRounds() {
        RoundPlanner p = withPolicy(ConvergencePolicy.FAIL);
        assertEquals(ITERATE, p.next(2, 400, SECOND, 100, 200, 1000, false));
        p.downtimeLimitMillis(500);
        assertEquals(SWITCH_CONVERGED, p.next(3, 400, SECOND, 100, 200, 1000, false));
    }
}
