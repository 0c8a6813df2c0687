package dev.ferry.compression;

/** A page payload that does not decode; it is never applied. */
public final class MalformedPayloadException extends Exception {
    private static final long serialVersionUID = 1L;

    public MalformedPayloadException(String message) {
        super(message);
    }
}
