package dev.ferry.core;

import java.util.Locale;

/** Why a source's pre-copy rounds ended; a report writes it by {@link #toString()}, e.g. {@code round-limit}. */
public enum SwitchoverReason {
    /** The expected pause came under the downtime limit. */
    CONVERGED,
    /** {@code max-rounds} rounds were sent. */
    ROUND_LIMIT,
    /** {@code time-limit} passed. */
    TIME_LIMIT,
    /** The migration switched to post-copy (asked for, planned, or the convergence policy). */
    POSTCOPY,
    /** Pre-copy stalled; the convergence policy decided what followed. */
    STALLED,
    /** The manager cancelled the migration. */
    CANCELLED;

    /** The reason's name in reports: lower case, words joined by a hyphen. */
    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }
}
