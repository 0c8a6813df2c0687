package dev.ferry.core;

/** Where a source's guest was left when its migration ended. */
public enum SourceVmState {
    /** It runs on the source: the migration failed before the hand-over, or was cancelled. */
    RUNNING,
    /** It was handed over: it runs on the destination and stays stopped here. */
    STOPPED,
    /** The hand-over is in doubt (the destination may have resumed it), so it stays paused here. */
    PAUSED
}
