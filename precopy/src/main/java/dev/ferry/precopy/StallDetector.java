package dev.ferry.precopy;

/**
 * Whether pre-copy has stalled, decided at each round's end from what the round measured: the
 * guest dirtied {@code dirtyPages} while the round sent {@code sentPages} in the same time, so
 * their ratio is the dirty rate against the bandwidth, and the share of the dirty set each further
 * round leaves. A round is stalled when that share is 1 or more (the dirty set does not shrink),
 * or when, shrinking at that share, the rounds still allowed would not bring the estimate under
 * the limit. Pre-copy has stalled after {@link #ROUNDS} stalled rounds in a row (QEMU's
 * auto-converge also waits for two), so that one noisy round decides nothing. Pure and
 * clock-free: the caller keeps the streak.
 */
public final class StallDetector {
    /** Stalled rounds in a row that make a stall. */
    public static final int ROUNDS = 2;

    private StallDetector() {
    }

    /**
     * @param dirtyPages         pages dirty at the round's end
     * @param sentPages          pages the round sent
     * @param expectedDowntimeMs the estimate after the round
     * @param downtimeLimitMs    the limit
     * @param roundsLeft         rounds still allowed before the round limit
     */
    public static boolean stalledRound(long dirtyPages, long sentPages, double expectedDowntimeMs, long downtimeLimitMs,
            int roundsLeft) {
        if (expectedDowntimeMs <= downtimeLimitMs || sentPages <= 0) {
            return false;
        }
        double share = (double) dirtyPages / sentPages;
        if (share >= 1) {
            return true;
        }
        if (share <= 0) {
            return false;
        }
        // rounds needed: expected x share^k <= limit
        double needed = Math.log(downtimeLimitMs / expectedDowntimeMs) / Math.log(share);
        return needed > roundsLeft;
    }
}
