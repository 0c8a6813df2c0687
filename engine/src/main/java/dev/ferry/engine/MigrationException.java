package dev.ferry.engine;

/**
 * A migration could not be started or waited for: the address cannot be listened on, the wait
 * for its end timed out ({@link MigrationTimeoutException}). A migration that ran and failed is
 * no exception: its report says so.
 */
public class MigrationException extends Exception {
    private static final long serialVersionUID = 1L;

    public MigrationException(String message) {
        super(message);
    }

    public MigrationException(String message, Throwable cause) {
        super(message, cause);
    }
}
