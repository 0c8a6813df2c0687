package dev.ferry.core;

/**
 * What a pre-copy migration does once it stalls: the guest dirties memory about as fast as the
 * link drains it, so more rounds will not bring the expected downtime under the limit.
 */
public enum ConvergencePolicy {
    /** Ends FAILED with the guest running on the source, as before the migration (the default). */
    FAIL,
    /** Switches to post-copy (needs the postcopy capability); the guest runs on the destination at once. */
    POSTCOPY,
    /**
     * Asks the guest to slow down (QEMU's auto-converge): {@link VmControl#throttle} at 20%, then
     * 10% more at every stalled round, up to 99%; fails as {@link #FAIL} when the guest cannot be
     * throttled or is throttled to the maximum and still stalls.
     */
    THROTTLE,
    /** Stops and copies now, whatever the pause costs; the report says the limit was exceeded. */
    FORCE
}
