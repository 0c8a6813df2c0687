package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** UntouchedPages over real anonymous and file memory, as /proc/self/pagemap describes them. */
class UntouchedPagesTest {
    private static final long PAGES = 3L * UntouchedPages.WINDOW + 7;

    @Test
    void onlyPagesNeverTouchedAreUntouched() {
        try (GuestMemory memory = GuestMemory.anonymous(PAGES * GuestMemory.PAGE_SIZE);
                UntouchedPages untouched = UntouchedPages.of(memory)) {
            long written = UntouchedPages.WINDOW + 5;
            long read = 2L * UntouchedPages.WINDOW;
            long last = PAGES - 1;
            memory.segment().set(ValueLayout.JAVA_BYTE, written << GuestMemory.PAGE_SHIFT, (byte) 1);
            memory.segment().set(ValueLayout.JAVA_BYTE, last << GuestMemory.PAGE_SHIFT, (byte) 2);
            byte seen = memory.segment().get(ValueLayout.JAVA_BYTE, read << GuestMemory.PAGE_SHIFT);
            assertEquals(0, seen);
            for (long page = 0; page < PAGES; page++) {
                boolean touched = page == written || page == read || page == last;
                assertEquals(!touched, untouched.contains(page), "page " + page);
            }
        }
    }

    @Test
    void anAnswerIsAsOldAsItsWindowAndAnotherWindowReadsAnew() {
        try (GuestMemory memory = GuestMemory.anonymous(PAGES * GuestMemory.PAGE_SIZE);
                UntouchedPages untouched = UntouchedPages.of(memory)) {
            assertTrue(untouched.contains(3));
            memory.segment().set(ValueLayout.JAVA_BYTE, 4L << GuestMemory.PAGE_SHIFT, (byte) 1);
            assertTrue(untouched.contains(4), "the window read before the write (the dirty log covers the write)");
            assertTrue(untouched.contains(UntouchedPages.WINDOW));
            assertFalse(untouched.contains(4), "read again once another window was asked for");
        }
    }

    @Test
    void aForgottenWindowIsReadAgain() {
        try (GuestMemory memory = GuestMemory.anonymous(PAGES * GuestMemory.PAGE_SIZE);
                UntouchedPages untouched = UntouchedPages.of(memory)) {
            assertTrue(untouched.contains(3));
            // written after the window was read, before the next round's sync: the next round must see it
            memory.segment().set(ValueLayout.JAVA_BYTE, 4L << GuestMemory.PAGE_SHIFT, (byte) 1);
            untouched.forget();
            assertFalse(untouched.contains(4), "a new round reads the pagemap again");
            assertTrue(untouched.contains(3));
        }
    }

    @Test
    void fileMemoryHasNoUntouchedPages(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("ram");
        Files.write(file, new byte[0]);
        try (GuestMemory memory = GuestMemory.mapFile(file, PAGES * GuestMemory.PAGE_SIZE);
                UntouchedPages untouched = UntouchedPages.of(memory)) {
            for (long page = 0; page < PAGES; page++) {
                assertFalse(untouched.contains(page), "a page not mapped in may hold the file's bytes");
            }
        }
    }

    @Test
    void aScanHashesUntouchedPagesAsZerosAndReadsTheRest() {
        try (GuestMemory memory = GuestMemory.anonymous(PAGES * GuestMemory.PAGE_SIZE)) {
            assertEquals(PageDigest.zeroMemory(PAGES), PageDigest.scan(memory));
            memory.segment().set(ValueLayout.JAVA_LONG, 9L << GuestMemory.PAGE_SHIFT, 42L);
            long digest;
            try (MemoryDigest expected = new MemoryDigest(PAGES)) {
                expected.update(9, PageDigest.contentHash(memory.segment(), 9L << GuestMemory.PAGE_SHIFT));
                digest = expected.value();
            }
            assertEquals(digest, PageDigest.scan(memory));
        }
    }
}
