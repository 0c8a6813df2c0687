package dev.ferry.qemu;

/**
 * QEMU refused a command, did not answer in time, or is gone. Unchecked because it crosses
 * {@link dev.ferry.core.VmControl}, whose calls a migration turns into a failure with the guest
 * left where it runs.
 */
public final class QmpException extends RuntimeException {
    private final String errorClass;

    QmpException(String message) {
        this(message, (String) null);
    }

    QmpException(String message, String errorClass) {
        super(message);
        this.errorClass = errorClass;
    }

    QmpException(String message, Throwable cause) {
        super(message, cause);
        this.errorClass = cause instanceof QmpException q ? q.errorClass : null;
    }

    /** QEMU's error class ({@code GenericError}, {@code CommandNotFound}, ...), or null when QEMU did not answer. */
    public String errorClass() {
        return errorClass;
    }
}
