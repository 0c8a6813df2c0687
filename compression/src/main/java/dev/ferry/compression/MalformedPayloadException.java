package dev.ferry.compression;

/**
 * A page payload that does not decode: truncated, structurally invalid, or decoding to other
 * than the size its encoding states. The destination page is left as it was; the migration must
 * treat this as a protocol error, never retry with a partial page.
 */
public final class MalformedPayloadException extends Exception {
    private static final long serialVersionUID = 1L;

    public MalformedPayloadException(String message) {
        super(message);
    }

    public MalformedPayloadException(String message, Throwable cause) {
        super(message, cause);
    }
}
