package dev.ferry.transport;

import java.io.IOException;

/** The link to the peer failed: closed, silent past the peer timeout, or carrying a malformed frame. */
public final class LinkException extends IOException {
    private static final long serialVersionUID = 1L;

    public LinkException(String message) {
        super(message);
    }

    public LinkException(String message, Throwable cause) {
        super(message, cause);
    }
}
