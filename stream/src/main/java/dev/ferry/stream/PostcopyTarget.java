package dev.ferry.stream;

import java.lang.foreign.MemorySegment;

/**
 * Where a destination's channels put pages once the guest runs there with pages missing: the
 * post-copy fault path. Pages arrive on several channels at once (the push, the answers to
 * requests), so every method is safe from any channel's thread, and for each page exactly one
 * install succeeds.
 */
public interface PostcopyTarget {
    /** Whether {@code page} is already here; a page already here is not installed again. */
    boolean isPresent(long page);

    /** The first page in {@code [from, to)} not here yet, or -1; costs a scan of that range, no more. */
    long nextMissing(long from, long to);

    /**
     * Installs {@code page} from the 4096 bytes at {@code src[offset..)} and wakes whoever waits
     * for it; true when this call made it present (false: another channel's copy came first).
     */
    boolean install(long page, MemorySegment src, long offset);

    /** Installs {@code page} as zeros; true when this call made it present. */
    boolean installZero(long page);

    /**
     * A reference for {@code page} was stale: it is asked for again on the return path, since a
     * guest may be waiting for it (the source answers in full).
     */
    void requestAgain(long page);

    /**
     * Whether a lost connection was recovered since post-copy started: pages sent before the loss
     * may never have arrived, so a reference to a page not here is stale rather than an error.
     */
    boolean recovered();
}
