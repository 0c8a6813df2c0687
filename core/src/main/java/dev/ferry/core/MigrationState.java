package dev.ferry.core;

/** The states of a migration, as in the design's state machine. */
public enum MigrationState {
    SETUP, BULK, ITERATE, STOP_AND_COPY, POSTCOPY, COMPLETED, FAILED, CANCELLED;

    /** Whether no transition leaves this state. */
    public boolean isTerminal() {
        return this == COMPLETED || this == FAILED || this == CANCELLED;
    }
}
