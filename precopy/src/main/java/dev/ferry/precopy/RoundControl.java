package dev.ferry.precopy;

/** What the state machine tells a round in progress, asked between frames. */
interface RoundControl {
    /** The caller cancelled: abandon the migration. */
    boolean cancelled();

    /** Stop the round here, leaving its unsent pages in the set (a switch to post-copy was requested). */
    boolean stopEarly();

    /** Another chunk of the round went out. */
    void afterChunk();
}
