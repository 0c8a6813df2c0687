package dev.ferry.engine;

/** A migration did not end within the time waited for it; it goes on. */
public final class MigrationTimeoutException extends MigrationException {
    private static final long serialVersionUID = 1L;

    public MigrationTimeoutException(String message) {
        super(message);
    }
}
