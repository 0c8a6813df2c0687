package dev.ferry.bench.cli;

/** A command line that does not make sense; printed with the usage, exit code 2. */
final class UsageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    UsageException(String message) {
        super(message);
    }
}
