package dev.ferry.precopy;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class StallDetectorTest {
    @Test
    void aRoundThatLeavesAsManyPagesDirtyAsItSentIsStalled() {
        assertTrue(StallDetector.stalledRound(60_000, 60_000, 10_000, 300, 25));
        assertTrue(StallDetector.stalledRound(90_000, 60_000, 10_000, 300, 25), "dirtier than it drains");
    }

    @Test
    void aRoundUnderTheLimitIsNeverStalled() {
        assertFalse(StallDetector.stalledRound(60_000, 60_000, 300, 300, 25));
    }

    @Test
    void shrinkingTooSlowlyForTheRoundsLeftIsStalled() {
        // 10 s down to 300 ms at 0.9 a round takes ln(0.03)/ln(0.9) = 33.3 rounds
        assertTrue(StallDetector.stalledRound(54_000, 60_000, 10_000, 300, 25));
        assertFalse(StallDetector.stalledRound(54_000, 60_000, 10_000, 300, 34));
        // halving: 5.1 rounds
        assertFalse(StallDetector.stalledRound(30_000, 60_000, 10_000, 300, 6));
        assertTrue(StallDetector.stalledRound(30_000, 60_000, 10_000, 300, 5));
    }

    @Test
    void aRoundThatSentNothingDecidesNothing() {
        assertFalse(StallDetector.stalledRound(100, 0, Double.POSITIVE_INFINITY, 300, 25));
        assertFalse(StallDetector.stalledRound(0, 100, 400, 300, 25), "nothing dirty: the estimate is fixed costs alone");
    }
}
