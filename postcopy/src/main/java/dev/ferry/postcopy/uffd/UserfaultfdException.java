package dev.ferry.postcopy.uffd;

/** A userfaultfd-related system call failed; {@link #errno()} says why. */
public final class UserfaultfdException extends RuntimeException {
    private final int errno;

    UserfaultfdException(String operation, int errno) {
        super(operation + " failed: " + Libc.describe(errno));
        this.errno = errno;
    }

    /** The {@code errno} the failing call set. */
    public int errno() {
        return errno;
    }
}
