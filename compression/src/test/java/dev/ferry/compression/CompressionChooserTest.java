package dev.ferry.compression;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.compression.CompressionChooser.Decision;
import dev.ferry.compression.CompressionChooser.State;
import org.junit.jupiter.api.Test;

/** Synthetic chunks of 8192 non-zero pages (32 MiB): what matters is how long each took. */
class CompressionChooserTest {
    private static final long PAGES = 8192;
    private static final long BYTES = PAGES * 4096;
    private static final long MS = 1_000_000;

    /** The chunk took {@code ms}; when compressed, LZ4 halved it. */
    private static Decision chunk(CompressionChooser chooser, long ms) {
        boolean compressed = chooser.current().compress();
        return chooser.next(PAGES, ms * MS, compressed ? BYTES : 0, compressed ? BYTES / 2 : 0);
    }

    @Test
    void probesPlainThenCompressedBeforeDeciding() {
        CompressionChooser chooser = new CompressionChooser();
        assertEquals(State.PROBE_OFF, chooser.state());
        assertFalse(chooser.current().compress());
        Decision d = chunk(chooser, 50);
        assertEquals(State.PROBE_ON, chooser.state(), d.reason());
        assertTrue(d.compress(), "then a chunk compressed");
    }

    @Test
    void loopbackWherePlainPagesCrossFasterKeepsCompressionOff() {
        CompressionChooser chooser = new CompressionChooser();
        chunk(chooser, 50);
        Decision d = chunk(chooser, 80);
        assertEquals(State.OFF, chooser.state(), d.reason());
        assertTrue(d.reason().startsWith("off: pages cross at 419 MB/s compressed (saving 50%) against 671 MB/s plain"),
                d.reason());
    }

    @Test
    void aSlowLinkWhereCompressedPagesCrossFasterTurnsItOn() {
        CompressionChooser chooser = new CompressionChooser();
        chunk(chooser, 335);
        Decision d = chunk(chooser, 170);
        assertEquals(State.PROBE_OFF, chooser.state(), "a switch on is confirmed by plain once more: " + d.reason());
        d = chunk(chooser, 335);
        assertEquals(State.ON, chooser.state(), d.reason());
        assertTrue(d.compress());
        for (int i = 0; i < CompressionChooser.PROBE_INTERVAL - 1; i++) {
            assertTrue(chunk(chooser, 170).compress());
        }
    }

    @Test
    void switchingOnNeedsAMarginStayingOnDoesNot() {
        CompressionChooser off = new CompressionChooser();
        chunk(off, 100);
        chunk(off, 95);
        assertEquals(State.OFF, off.state(), "5% faster is within the noise: stays off");
        CompressionChooser on = new CompressionChooser();
        chunk(on, 100);
        chunk(on, 50);
        chunk(on, 100);
        assertEquals(State.ON, on.state());
        chunk(on, 97);
        assertEquals(State.ON, on.state(), "still faster than plain: stays on");
    }

    @Test
    void aLosingModeIsProbedLessAndLessOftenButStillProbed() {
        CompressionChooser chooser = new CompressionChooser();
        chunk(chooser, 50);
        chunk(chooser, 80);
        int[] gaps = new int[3];
        for (int probe = 0; probe < gaps.length; probe++) {
            int offChunks = 0;
            while (!chunk(chooser, 50).compress()) {
                offChunks++;
                assertTrue(offChunks < 1000, "never probed again");
            }
            assertEquals(State.PROBE_ON, chooser.state());
            gaps[probe] = offChunks;
            Decision d = chunk(chooser, 80);
            assertEquals(State.OFF, chooser.state(), d.reason());
        }
        assertEquals(CompressionChooser.PROBE_INTERVAL - 1, gaps[0]);
        assertTrue(gaps[1] > gaps[0] && gaps[2] > gaps[1], "the interval grows while probes lose: "
                + java.util.Arrays.toString(gaps));
    }

    @Test
    void aProbeThatWinsSwitchesModes() {
        CompressionChooser chooser = new CompressionChooser();
        chunk(chooser, 50);
        chunk(chooser, 80);
        while (!chunk(chooser, 50).compress()) {
            assertEquals(State.OFF, chooser.state());
        }
        // meanwhile the link got slow: the probe shows compressed pages now cross faster
        Decision d = chunk(chooser, 40);
        assertEquals(State.PROBE_OFF, chooser.state(), "confirming: " + d.reason());
        d = chunk(chooser, 90);
        assertEquals(State.ON, chooser.state(), d.reason());
    }

    @Test
    void aSwitchOnThatPlainBeatsAtOnceIsUndone() {
        CompressionChooser chooser = new CompressionChooser();
        chunk(chooser, 120);
        chunk(chooser, 80);
        assertEquals(State.PROBE_OFF, chooser.state(), "the first plain chunk looked slow");
        Decision d = chunk(chooser, 50);
        assertEquals(State.OFF, chooser.state(), "plain measured again is faster: " + d.reason());
    }

    @Test
    void aChunkOfZeroPagesTellsNothing() {
        CompressionChooser chooser = new CompressionChooser();
        chunk(chooser, 335);
        chunk(chooser, 170);
        chunk(chooser, 335);
        Decision before = chooser.current();
        assertEquals(before, chooser.next(0, 3 * MS, 0, 0), "zero pages cross fast either way");
    }
}
