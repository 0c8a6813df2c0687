package dev.ferry.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The limiter is pure arithmetic over instants, so a "sender" here is a loop over synthetic time. */
class BandwidthLimiterTest {
    private static final long SECOND = 1_000_000_000L;

    @Test
    void aGreedySenderIsHeldToTheRateOverALongRun() {
        long rate = 3_000_000; // not a divisor of anything below, so rounding shows if it accumulates
        BandwidthLimiter limiter = new BandwidthLimiter(rate);
        long now = 7 * SECOND;
        long sent = 0;
        long start = now;
        for (int frame = 0; frame < 100_000; frame++) {
            int bytes = 1_461;
            now += limiter.charge(bytes, now);
            sent += bytes;
        }
        double achieved = sent * 1e9 / (now - start);
        assertEquals(rate, achieved, rate * 0.01, "achieved " + achieved + " B/s");
    }

    @Test
    void noWindowCarriesMoreThanRateTimesItsLengthPlusOneBurstAndOneFrame() {
        long rate = 125_000_000;
        BandwidthLimiter limiter = new BandwidthLimiter(rate);
        SplittableRandom random = new SplittableRandom(9);
        long start = 0;
        long now = start;
        long sent = 0;
        int maxFrame = 256 << 10;
        long burstBytes = rate * BandwidthLimiter.BURST_NANOS / SECOND;
        for (int i = 0; i < 50_000; i++) {
            if (random.nextInt(10) == 0) {
                now += random.nextLong(20_000_000); // the sender goes idle for up to 20 ms
            }
            int bytes = 1 + random.nextInt(maxFrame);
            now += limiter.charge(bytes, now);
            sent += bytes;
            double allowed = (double) rate * (now - start) / SECOND + burstBytes + maxFrame;
            assertTrue(sent <= allowed, "sent " + sent + " by " + (now - start) + " ns, allowed " + allowed);
        }
    }

    @Test
    void afterIdlingASenderMayRunAheadByOneBurstOnly() {
        long rate = 100_000_000;
        BandwidthLimiter limiter = new BandwidthLimiter(rate);
        long now = 60 * SECOND;
        int frame = 10_000;
        long freeBytes = 0;
        while (limiter.charge(frame, now) == 0) {
            freeBytes += frame;
        }
        long burstBytes = rate * BandwidthLimiter.BURST_NANOS / SECOND;
        assertTrue(freeBytes >= burstBytes && freeBytes <= burstBytes + frame,
                "sent " + freeBytes + " bytes without waiting, burst is " + burstBytes);
    }

    @Test
    void aSenderBelowTheRateNeverWaits() {
        BandwidthLimiter limiter = new BandwidthLimiter(1_000_000);
        long now = 0;
        for (int i = 0; i < 1000; i++) {
            assertEquals(0, limiter.charge(1000, now));
            now += 1_100_000; // 1000 bytes per 1.1 ms: 909 kB/s
        }
    }

    @Test
    void zeroIsUnlimitedAndNegativeIsRejected() {
        BandwidthLimiter unlimited = new BandwidthLimiter(0);
        assertFalse(unlimited.isLimited());
        for (int i = 0; i < 1000; i++) {
            assertEquals(0, unlimited.charge(Integer.MAX_VALUE, 0));
        }
        assertTrue(new BandwidthLimiter(1).isLimited());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new BandwidthLimiter(-1));
        assertTrue(e.getMessage().contains("max-bandwidth"));
    }

    @Test
    void aNewRateHoldsFromTheNextFrameAndForgivesWhatTheOldOneCharged() {
        BandwidthLimiter limiter = new BandwidthLimiter(1_000_000);
        long now = 0;
        limiter.charge(1_000_000, now);
        assertTrue(limiter.charge(1000, now) > 900_000_000L, "at 1 MB/s a second of bytes is owed");
        long generation = limiter.generation();
        limiter.rate(100_000_000, now);
        assertTrue(limiter.generation() != generation, "a waiting sender sees the change");
        assertEquals(100_000_000, limiter.rate());
        assertEquals(0, limiter.charge(100_000, now), "the debt at the old rate is gone");
        // sending steadily at the new rate: 1 MB every 10 ms is 100 MB/s
        long waited = 0;
        for (int i = 0; i < 100; i++) {
            waited += limiter.charge(1_000_000, now + waited);
        }
        assertTrue(Math.abs(waited - SECOND) < SECOND / 50, "100 MB at 100 MB/s waited " + waited + " ns");
        limiter.rate(0, now);
        assertFalse(limiter.isLimited());
        assertEquals(0, limiter.charge(Integer.MAX_VALUE, now));
        assertThrows(IllegalArgumentException.class, () -> limiter.rate(-5, 0));
    }
}
