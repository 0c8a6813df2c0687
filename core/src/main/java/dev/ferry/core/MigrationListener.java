package dev.ferry.core;

/**
 * Progress of a running migration, on either side. The source calls it on the migration's thread;
 * the destination on the session's threads, one call at a time. It must return quickly.
 */
public interface MigrationListener {
    /** A listener that ignores everything. */
    MigrationListener NONE = new MigrationListener() { };

    /** The state machine entered {@code state}. */
    default void onState(MigrationState state) {
    }

    /** A round finished. */
    default void onRound(RoundRecord round) {
    }

    /** A snapshot as pages go: every 50 ms or so while a round runs, and at every round's end. */
    default void onProgress(MigrationProgress progress) {
    }
}
