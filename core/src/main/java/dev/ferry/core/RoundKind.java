package dev.ferry.core;

import java.util.Locale;

/** What a round of a migration was; a report writes it by {@link #toString()}, e.g. {@code stop-and-copy}. */
public enum RoundKind {
    /** The first round: every page. */
    BULK,
    /** A pre-copy round: the pages dirtied since the last. */
    ITERATE,
    /** The round with the guest paused. */
    STOP_AND_COPY,
    /** After the stop-and-copy, with dedup: the pages whose references the destination found stale, in full. */
    STALE,
    /** Post-copy: the pages pushed and requested after the switch. */
    POSTCOPY;

    /** The kind's name in reports: lower case, words joined by a hyphen. */
    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }
}
