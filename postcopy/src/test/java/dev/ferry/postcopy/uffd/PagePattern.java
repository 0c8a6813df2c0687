package dev.ferry.postcopy.uffd;

import dev.ferry.core.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** The bytes a test installs in a page: distinct per page and per generation. */
final class PagePattern {
    private PagePattern() {
    }

    /** Fills the page-sized {@code page} buffer (private native memory, never registered). */
    static void fill(MemorySegment buffer, long page, long generation) {
        for (int slot = 0; slot < GuestMemory.PAGE_SIZE / Long.BYTES; slot++) {
            buffer.setAtIndex(ValueLayout.JAVA_LONG, slot, page * 0x9E37_79B9_7F4A_7C15L ^ generation << 48 ^ slot);
        }
    }

    /** Whether the page-sized {@code buffer} holds page {@code page}'s pattern of {@code generation}. */
    static boolean matches(MemorySegment buffer, long page, long generation) {
        for (int slot = 0; slot < GuestMemory.PAGE_SIZE / Long.BYTES; slot++) {
            if (buffer.getAtIndex(ValueLayout.JAVA_LONG, slot) != (page * 0x9E37_79B9_7F4A_7C15L ^ generation << 48 ^ slot)) {
                return false;
            }
        }
        return true;
    }
}
