package dev.ferry.stream;

/** The caller cancelled the migration. */
public final class CancelledException extends Exception {
    private static final long serialVersionUID = 1L;

    public CancelledException() {
        super("cancelled by the caller");
    }
}
