package dev.ferry.stream;

import dev.ferry.core.GuestMemory;

/**
 * Another guest of this destination's gang, as a reference naming one of its pages may read it:
 * its memory, and whether a page of it is here at all (in post-copy a missing page is not, and
 * reading it would wait for that guest's own fault path).
 */
public interface HeldGuest {
    /** Its memory; closed once that guest's session gave it back (a read then fails). */
    GuestMemory memory();

    /** Whether {@code page} holds content that guest received (not a page post-copy still lacks). */
    boolean holds(long page);
}
