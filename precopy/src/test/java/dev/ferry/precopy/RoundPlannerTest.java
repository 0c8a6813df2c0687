package dev.ferry.precopy;

import static dev.ferry.precopy.RoundPlanner.Step.ITERATE;
import static dev.ferry.precopy.RoundPlanner.Step.SWITCH_CONVERGED;
import static dev.ferry.precopy.RoundPlanner.Step.SWITCH_POSTCOPY;
import static dev.ferry.precopy.RoundPlanner.Step.SWITCH_ROUND_LIMIT;
import static dev.ferry.precopy.RoundPlanner.Step.SWITCH_TIME_LIMIT;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationParameters;
import org.junit.jupiter.api.Test;

class RoundPlannerTest {
    private static final long SECOND = 1_000_000_000L;
    private final RoundPlanner planner = new RoundPlanner(MigrationParameters.builder()
            .downtimeLimitMillis(300).maxRounds(5).totalTimeLimitMillis(10_000).build());

    @Test
    void switchesOnceTheEstimateFitsTheLimit() {
        assertEquals(SWITCH_CONVERGED, planner.next(1, 300.0, 0, 0, -1, false));
        assertEquals(SWITCH_CONVERGED, planner.next(1, 0.0, 0, 0, -1, false));
        assertEquals(ITERATE, planner.next(1, 300.001, 0, 0, -1, false));
        assertEquals(ITERATE, planner.next(1, Double.POSITIVE_INFINITY, 0, 0, -1, false), "no measurement never converges");
    }

    @Test
    void switchesAtTheRoundLimitWhateverTheEstimate() {
        assertEquals(ITERATE, planner.next(4, 1e6, SECOND, 0, -1, false));
        assertEquals(SWITCH_ROUND_LIMIT, planner.next(5, 1e6, SECOND, 0, -1, false));
        assertEquals(SWITCH_ROUND_LIMIT, planner.next(6, Double.POSITIVE_INFINITY, SECOND, 0, -1, false));
    }

    @Test
    void switchesAtTheTimeLimitWhateverTheEstimate() {
        assertEquals(ITERATE, planner.next(2, 1e6, 10 * SECOND - 1, 0, -1, false));
        assertEquals(SWITCH_TIME_LIMIT, planner.next(2, 1e6, 10 * SECOND, 0, -1, false));
    }

    @Test
    void convergenceIsCheckedFirstThenRoundsThenTime() {
        assertEquals(SWITCH_CONVERGED, planner.next(5, 10, 20 * SECOND, 0, -1, false));
        assertEquals(SWITCH_ROUND_LIMIT, planner.next(5, 1e6, 20 * SECOND, 0, -1, false));
    }

    @Test
    void aTimeLimitOfZeroIsNone() {
        RoundPlanner unlimited = new RoundPlanner(MigrationParameters.defaults());
        assertEquals(ITERATE, unlimited.next(29, 301, Long.MAX_VALUE, 0, -1, false));
        assertEquals(SWITCH_ROUND_LIMIT, unlimited.next(30, 301, 0, 0, -1, false), "default max-rounds is 30");
    }

    @Test
    void postcopySwitchesRightAfterTheBulkRound() {
        RoundPlanner postcopy = new RoundPlanner(MigrationParameters.builder().mode(MigrationMode.POSTCOPY).build());
        assertEquals(SWITCH_POSTCOPY, postcopy.next(1, 0.0, 0, 0, -1, false), "even when a stop-and-copy would fit");
    }

    @Test
    void hybridSwitchesToPostcopyOnceTheDirtySetStopsShrinking() {
        RoundPlanner hybrid = new RoundPlanner(MigrationParameters.builder().mode(MigrationMode.HYBRID)
                .downtimeLimitMillis(300).maxRounds(30).build());
        assertEquals(ITERATE, hybrid.next(1, 5000, SECOND, 100_000, -1, false), "one round says nothing of a trend");
        assertEquals(ITERATE, hybrid.next(2, 4000, SECOND, 89_999, 100_000, false), "shrinking by more than a tenth");
        assertEquals(SWITCH_POSTCOPY, hybrid.next(3, 4000, SECOND, 81_000, 89_999, false), "shrinking by less");
        assertEquals(SWITCH_CONVERGED, hybrid.next(3, 200, SECOND, 95_000, 90_000, false), "converged still wins");
        assertEquals(SWITCH_POSTCOPY, hybrid.next(30, 4000, SECOND, 1, 100_000, false), "the round limit hands over by post-copy");
    }

    @Test
    void hybridHonoursPostcopyAfterRoundsAndARequest() {
        RoundPlanner hybrid = new RoundPlanner(MigrationParameters.builder().mode(MigrationMode.HYBRID)
                .postcopyAfterRounds(3).build());
        assertEquals(ITERATE, hybrid.next(2, 4000, SECOND, 10, 100_000, false));
        assertEquals(SWITCH_POSTCOPY, hybrid.next(3, 4000, SECOND, 10, 100_000, false));
        assertEquals(SWITCH_POSTCOPY, planner.next(1, 4000, SECOND, 10, -1, true), "a request switches even in pre-copy mode");
    }
}
