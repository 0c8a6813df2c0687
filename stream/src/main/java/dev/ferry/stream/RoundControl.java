package dev.ferry.stream;

/** What the source session tells a round in progress, asked between frames by every channel. */
public interface RoundControl {
    /** The caller cancelled: abandon the migration. */
    boolean cancelled();

    /** Stop the round here, leaving its unsent pages in the set (a switch to post-copy was requested). */
    boolean stopEarly();
}
