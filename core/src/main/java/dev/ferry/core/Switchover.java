package dev.ferry.core;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * How a source switched over, or why it did not: what it decided, what the pause was predicted to
 * cost and what it cost.
 *
 * @param reason          why the rounds ended, or null when they never did
 * @param policy          the convergence policy the migration ran with
 * @param downtimeLimitMs the limit in force at the switch-over
 * @param stalledRounds   rounds that ended stalled (dirty rate against bandwidth)
 * @param throttlePercent how much the guest was slowed down at the end (auto-converge)
 * @param limitExceeded   whether the pause was predicted or measured at more than
 *                        {@link #TOLERANCE} times the limit (the CLI then exits {@code 3})
 * @param predicted       the estimate the switch-over was decided on, by part
 * @param actual          the pause as measured, by part ({@link DowntimeBreakdown#UNKNOWN} without one)
 */
public record Switchover(SwitchoverReason reason, ConvergencePolicy policy, long downtimeLimitMs, int stalledRounds,
        int throttlePercent, boolean limitExceeded, DowntimeBreakdown predicted, DowntimeBreakdown actual) {
    /**
     * How far over the limit a pause may go before it counts as exceeding it: estimates of a
     * pause on a shared machine are good to a quarter, not to the millisecond.
     */
    public static final double TOLERANCE = 1.25;

    /** Whether {@code ms} counts as over {@code limitMs}. */
    public static boolean exceeds(double ms, long limitMs) {
        return ms > limitMs * TOLERANCE;
    }

    /** Adds this switch-over as the {@code switchover} member of {@code json}. */
    public void putJsonMembers(ObjectNode json) {
        ObjectNode node = json.putObject("switchover")
                .put("reason", reason == null ? "none" : reason.toString())
                .put("policy", policy.name().toLowerCase(java.util.Locale.ROOT))
                .put("downtimeLimitMs", downtimeLimitMs)
                .put("stalledRounds", stalledRounds)
                .put("throttlePercent", throttlePercent)
                .put("limitExceeded", limitExceeded);
        node.set("predicted", predicted.toJsonNode());
        node.set("actual", actual.toJsonNode());
    }
}
