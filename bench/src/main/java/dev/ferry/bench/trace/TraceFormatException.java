package dev.ferry.bench.trace;

import java.io.IOException;

/**
 * A trace that breaks a rule of the {@code .mtrace} format. The message names the byte offset in
 * the decompressed stream and what was expected there.
 */
public final class TraceFormatException extends IOException {
    private final long offset;

    /** A violation at {@code offset} of the decompressed stream. */
    public TraceFormatException(long offset, String message) {
        super("trace offset " + offset + ": " + message);
        this.offset = offset;
    }

    /** A violation at {@code offset} caused by {@code cause} (a zstd error). */
    public TraceFormatException(long offset, String message, Throwable cause) {
        super("trace offset " + offset + ": " + message, cause);
        this.offset = offset;
    }

    /** The byte offset of the violation in the decompressed stream. */
    public long offset() {
        return offset;
    }
}
