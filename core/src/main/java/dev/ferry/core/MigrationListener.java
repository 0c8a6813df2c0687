package dev.ferry.core;

/** Progress of a running migration, called on the migration's thread; must return quickly. */
public interface MigrationListener {
    /** A listener that ignores everything. */
    MigrationListener NONE = new MigrationListener() { };

    /** The state machine entered {@code state}. */
    default void onState(MigrationState state) {
    }

    /** A round finished. */
    default void onRound(RoundRecord round) {
    }

    /** Bytes put on the wire so far and the round in progress; called every few MiB. */
    default void onProgress(long bytesSent, int round, long pagesLeftInRound) {
    }
}
