package dev.ferry.precopy;

/** The caller cancelled the migration. */
final class CancelledException extends Exception {
    private static final long serialVersionUID = 1L;

    CancelledException() {
        super("cancelled by the caller");
    }
}
