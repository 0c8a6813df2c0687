package dev.ferry.protocol;

/** The peer sent something this protocol does not allow; the migration fails with this message. */
public class ProtocolException extends Exception {
    private static final long serialVersionUID = 1L;

    public ProtocolException(String message) {
        super(message);
    }
}
