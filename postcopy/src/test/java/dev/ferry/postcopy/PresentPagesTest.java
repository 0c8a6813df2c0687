package dev.ferry.postcopy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class PresentPagesTest {
    @Test
    void missingPagesAreCountedAndPublishedOnce() {
        PresentPages present = new PresentPages(130, dev.ferry.core.NanoClock.SYSTEM);
        assertTrue(present.isPresent(129));
        assertTrue(present.markMissing(64));
        assertTrue(present.markMissing(129));
        assertFalse(present.markMissing(129), "already missing");
        assertEquals(2, present.missing());
        assertEquals(64, present.nextMissing(0));
        assertEquals(129, present.nextMissing(65));
        assertEquals(65, present.nextPresent(64), "a run of one missing page");
        assertEquals(130, present.nextPresent(129), "a run that ends with the memory");
        assertEquals(0, present.nextPresent(0));
        assertTrue(present.markPresent(64));
        assertFalse(present.markPresent(64), "a duplicate arrival is not installed twice");
        assertEquals(1, present.missing());
        assertEquals(-1, present.nextMissing(130), "past the end");
        assertThrows(IndexOutOfBoundsException.class, () -> present.markMissing(130));
    }

    @Test
    void aWaiterIsReleasedByTheArrival() throws Exception {
        PresentPages present = new PresentPages(8, dev.ferry.core.NanoClock.SYSTEM);
        present.markMissing(3);
        CompletableFuture<Boolean> waiter = CompletableFuture.supplyAsync(() -> present.awaitPresent(3, TimeUnit.SECONDS.toNanos(10)));
        assertFalse(present.awaitPresent(3, 1_000_000), "not there yet");
        present.markPresent(3);
        assertTrue(waiter.get(10, TimeUnit.SECONDS));
    }

    @Test
    void aFailedMigrationReleasesWaitersWithTheReason() throws Exception {
        PresentPages present = new PresentPages(8, dev.ferry.core.NanoClock.SYSTEM);
        present.markMissing(5);
        CompletableFuture<Boolean> waiter = CompletableFuture.supplyAsync(() -> present.awaitPresent(5, TimeUnit.SECONDS.toNanos(10)));
        present.fail("source died");
        Exception e = assertThrows(Exception.class, () -> waiter.get(10, TimeUnit.SECONDS));
        assertTrue(e.getCause() instanceof PageLostException, e.toString());
        assertTrue(e.getCause().getMessage().contains("page 5 will never arrive: source died"), e.getCause().getMessage());
        assertTrue(present.awaitPresent(4, 0), "present pages still pass");
    }
}
