package dev.ferry.dedup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class DedupChooserTest {
    private static final int CHUNK = 2048;

    @Test
    void chunksThatFindCopiesKeepTheIndexOn() {
        DedupChooser chooser = new DedupChooser();
        for (int i = 0; i < 100; i++) {
            assertTrue(chooser.next(CHUNK, CHUNK / DedupChooser.DRY_ONE_IN), "chunk " + i);
        }
        assertEquals(DedupChooser.State.ON, chooser.state());
    }

    @Test
    void twoDryChunksSwitchItOffAndADryProbeDoublesTheWait() {
        DedupChooser chooser = new DedupChooser();
        assertTrue(chooser.next(CHUNK, 0), "one dry chunk is not enough");
        assertFalse(chooser.next(CHUNK, 0), "the second in a row switches it off");
        assertEquals(offChunks(chooser), DedupChooser.PROBE_INTERVAL - 1);
        assertFalse(chooser.next(CHUNK, 0), "a dry probe: off again at once");
        assertEquals(offChunks(chooser), 2 * DedupChooser.PROBE_INTERVAL - 1, "for twice as long");
    }

    @Test
    void aProbeThatFindsCopiesSwitchesItBackOn() {
        DedupChooser chooser = new DedupChooser();
        chooser.next(CHUNK, 0);
        chooser.next(CHUNK, 0);
        offChunks(chooser);
        assertTrue(chooser.next(CHUNK, CHUNK / 4), "the probe found copies");
        assertTrue(chooser.next(CHUNK, CHUNK / 4));
        assertEquals(DedupChooser.State.ON, chooser.state());
        assertTrue(chooser.next(CHUNK, 0));
        assertFalse(chooser.next(CHUNK, 0));
        assertEquals(DedupChooser.PROBE_INTERVAL - 1, offChunks(chooser), "the wait was reset");
    }

    @Test
    void aChunkOfZeroPagesChangesNothing() {
        DedupChooser chooser = new DedupChooser();
        assertTrue(chooser.next(CHUNK, 0));
        assertTrue(chooser.next(0, 0), "nothing looked up, nothing learnt");
        assertFalse(chooser.next(CHUNK, 0), "still the second dry chunk in a row");
    }

    @Test
    void theWaitStopsGrowingAtItsBound() {
        DedupChooser chooser = new DedupChooser();
        chooser.next(CHUNK, 0);
        chooser.next(CHUNK, 0);
        int off = 0;
        for (int probe = 0; probe < 10; probe++) {
            off = offChunks(chooser);
            chooser.next(CHUNK, 0);
        }
        assertEquals(DedupChooser.MAX_INTERVAL - 1, off);
    }

    /** Feeds chunks that looked nothing up while the index is off; returns how many; the next chunk is the probe. */
    private static int offChunks(DedupChooser chooser) {
        int off = 0;
        while (!chooser.next(0, 0)) {
            off++;
        }
        return off;
    }
}
