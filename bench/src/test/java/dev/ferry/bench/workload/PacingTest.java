package dev.ferry.bench.workload;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class PacingTest {
    private long now;

    @Test
    void tokenBucketPacesAtItsRateAndEarnsNothingWhilePaused() {
        TokenBucket bucket = new TokenBucket(() -> now, 10_000); // one page per 100 us
        long taken = 0;
        for (int i = 0; i < 100_000; i++) { // 1 s in 10 us steps
            now += 10_000;
            taken += bucket.take(64);
        }
        assertEquals(10_000, taken, 1);
        assertEquals(0, bucket.take(64));
        assertTrue(bucket.nanosUntilToken() > 0 && bucket.nanosUntilToken() <= 100_000);

        now += 5_000_000_000L; // a 5 s pause
        bucket.skipTo(now);
        now += 1_000_000;
        assertEquals(10, bucket.take(1000), 1);
    }

    @Test
    void tokenBucketBurstIsBounded() {
        TokenBucket bucket = new TokenBucket(() -> now, 10_000);
        now += 10_000_000_000L; // idle for 10 s: only a 5 ms burst accrues
        assertEquals(50, bucket.take(1_000_000));
    }

    @Test
    void zipfIsSkewedAndScattersRanksOverAllPages() {
        PageChooser.Zipf zipf = new PageChooser.Zipf(4096, 1.0);
        SplittableRandom random = new SplittableRandom(1);
        int[] hits = new int[4096];
        int n = 200_000;
        for (int i = 0; i < n; i++) {
            hits[(int) zipf.next(random)]++;
        }
        // rank 0 has probability 1/H(4096) ~ 0.114; rank 1 half that
        assertEquals(zipf.probability(0), hits[(int) zipf.page(0)] / (double) n, 0.01);
        assertEquals(zipf.probability(1), hits[(int) zipf.page(1)] / (double) n, 0.01);
        long top10 = 0;
        for (int r = 0; r < 10; r++) {
            top10 += hits[(int) zipf.page(r)];
        }
        assertTrue(top10 > 0.3 * n, "top 10 of 4096 pages take " + top10 / (double) n);
        boolean[] seen = new boolean[4096];
        for (int r = 0; r < 4096; r++) {
            seen[(int) zipf.page(r)] = true;
        }
        for (boolean s : seen) {
            assertTrue(s, "rank to page is a bijection");
        }
    }

    @Test
    void threadsScaleWithRate() {
        assertEquals(0, SyntheticWorkload.threads(0));
        assertEquals(1, SyntheticWorkload.threads(5));
        assertEquals(1, SyntheticWorkload.threads(200));
        assertEquals(2, SyntheticWorkload.threads(201));
        assertEquals(2, SyntheticWorkload.threads(5000));
    }
}
