package dev.ferry.precopy;

import static dev.ferry.precopy.RoundPlanner.Step.ITERATE;
import static dev.ferry.precopy.RoundPlanner.Step.SWITCH_CONVERGED;
import static dev.ferry.precopy.RoundPlanner.Step.SWITCH_ROUND_LIMIT;
import static dev.ferry.precopy.RoundPlanner.Step.SWITCH_TIME_LIMIT;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ferry.core.MigrationParameters;
import org.junit.jupiter.api.Test;

class RoundPlannerTest {
    private static final long SECOND = 1_000_000_000L;
    private final RoundPlanner planner = new RoundPlanner(MigrationParameters.builder()
            .downtimeLimitMillis(300).maxRounds(5).totalTimeLimitMillis(10_000).build());

    @Test
    void switchesOnceTheEstimateFitsTheLimit() {
        assertEquals(SWITCH_CONVERGED, planner.next(1, 300.0, 0));
        assertEquals(SWITCH_CONVERGED, planner.next(1, 0.0, 0));
        assertEquals(ITERATE, planner.next(1, 300.001, 0));
        assertEquals(ITERATE, planner.next(1, Double.POSITIVE_INFINITY, 0), "no measurement never converges");
    }

    @Test
    void switchesAtTheRoundLimitWhateverTheEstimate() {
        assertEquals(ITERATE, planner.next(4, 1e6, SECOND));
        assertEquals(SWITCH_ROUND_LIMIT, planner.next(5, 1e6, SECOND));
        assertEquals(SWITCH_ROUND_LIMIT, planner.next(6, Double.POSITIVE_INFINITY, SECOND));
    }

    @Test
    void switchesAtTheTimeLimitWhateverTheEstimate() {
        assertEquals(ITERATE, planner.next(2, 1e6, 10 * SECOND - 1));
        assertEquals(SWITCH_TIME_LIMIT, planner.next(2, 1e6, 10 * SECOND));
    }

    @Test
    void convergenceIsCheckedFirstThenRoundsThenTime() {
        assertEquals(SWITCH_CONVERGED, planner.next(5, 10, 20 * SECOND));
        assertEquals(SWITCH_ROUND_LIMIT, planner.next(5, 1e6, 20 * SECOND));
    }

    @Test
    void aTimeLimitOfZeroIsNone() {
        RoundPlanner unlimited = new RoundPlanner(MigrationParameters.defaults());
        assertEquals(ITERATE, unlimited.next(29, 301, Long.MAX_VALUE));
        assertEquals(SWITCH_ROUND_LIMIT, unlimited.next(30, 301, 0), "default max-rounds is 30");
    }
}
