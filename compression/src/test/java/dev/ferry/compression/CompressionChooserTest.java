package dev.ferry.compression;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.compression.CompressionChooser.Decision;
import dev.ferry.compression.CompressionChooser.State;
import org.junit.jupiter.api.Test;

/**
 * Synthetic rounds: 400 MB of pages before compression, which LZ4 halves at 500 MB/s of input
 * (0.8 s of CPU per round).
 */
class CompressionChooserTest {
    private static final long MB = 1_000_000;
    private static final long SECOND = 1_000_000_000;
    private static final long BEFORE = 400 * MB;
    private static final long COMPRESSED = 200 * MB;
    private static final long CPU = 800_000_000;

    @Test
    void loopbackAtGigabytesPerSecondTurnsCompressionOff() {
        CompressionChooser chooser = new CompressionChooser();
        assertTrue(chooser.current().compress(), "the first round probes the compressor");
        assertEquals(CompressionChooser.PROBE_SAMPLE, chooser.current().compressEvery(), "on a sample of its pages");
        // The probe round is CPU-bound (0.8 s of a 1 s round), so its 200 MB/s says nothing of the link.
        Decision d = chooser.next(COMPRESSED, SECOND, BEFORE, CPU, 200 * MB, true);
        assertEquals(State.PROBE_OFF, chooser.state(), d.reason());
        assertFalse(d.compress());
        // Uncompressed, 400 MB crosses in 0.2 s: a 2 GB/s link beats 250 MB/s of wire time saved.
        d = chooser.next(BEFORE, SECOND / 5, BEFORE, 0, 2000 * MB, true);
        assertEquals(State.OFF, chooser.state(), d.reason());
        assertTrue(d.reason().startsWith("off: compressing saves 50% at 500 MB/s"), d.reason());
        assertTrue(d.reason().contains("link 2000 MB/s"), d.reason());
    }

    @Test
    void aHundredMegabytesPerSecondLinkTurnsCompressionOn() {
        CompressionChooser chooser = new CompressionChooser();
        // 200 MB at 100 MB/s takes 2 s; compressing took 0.8 s of it, so the link figure holds.
        Decision d = chooser.next(COMPRESSED, 2 * SECOND, BEFORE, CPU, 100 * MB, true);
        assertEquals(State.ON, chooser.state(), d.reason());
        assertTrue(d.compress());
        assertEquals(1, d.compressEvery(), "on: every page");
        assertTrue(d.reason().startsWith("on: compressing saves 50% at 500 MB/s, so pages would cross at 200 MB/s"),
                d.reason());
        for (int round = 0; round < 5; round++) {
            assertTrue(chooser.next(COMPRESSED, 2 * SECOND, BEFORE, CPU, 100 * MB, true).compress());
        }
    }

    @Test
    void incompressiblePagesTurnItOffEvenOnASlowLink() {
        CompressionChooser chooser = new CompressionChooser();
        Decision d = chooser.next(BEFORE * 98 / 100, 5 * SECOND, BEFORE, CPU, 100 * MB, true);
        assertFalse(d.compress(), d.reason());
        assertEquals(State.OFF, chooser.state());
    }

    @Test
    void whileOffItProbesTheCompressorAgainAndLearnsTheLinkGotSlower() {
        CompressionChooser chooser = new CompressionChooser();
        chooser.next(COMPRESSED, SECOND, BEFORE, CPU, 200 * MB, true);
        chooser.next(BEFORE, SECOND / 5, BEFORE, 0, 2000 * MB, true);
        int offRounds = 1;
        while (!chooser.next(BEFORE, SECOND / 5, BEFORE, 0, 2000 * MB, true).compress()) {
            offRounds++;
        }
        assertEquals(CompressionChooser.PROBE_INTERVAL, offRounds + 1, "a probe within the interval, not before");
        assertEquals(State.PROBE_ON, chooser.state());
        // Meanwhile the link fell to 100 MB/s: the probe round shows compression now pays.
        Decision d = chooser.next(COMPRESSED, 2 * SECOND, BEFORE, CPU, 100 * MB, true);
        assertEquals(State.ON, chooser.state(), d.reason());
    }

    @Test
    void staysOnNearTheThresholdButNeedsAMarginToSwitchOn() {
        // Against a 450 MB/s link, compressing (500 MB/s, halving) moves pages at 500 MB/s: faster,
        // but not by the 25% switch-on margin.
        CompressionChooser on = new CompressionChooser();
        on.next(COMPRESSED, 2 * SECOND, BEFORE, CPU, 100 * MB, true);
        assertEquals(State.ON, on.state());
        assertTrue(on.next(COMPRESSED, 2 * SECOND, BEFORE, CPU, 450 * MB, true).compress(), "500 MB/s still beats 450 MB/s");
        CompressionChooser off = new CompressionChooser();
        off.next(COMPRESSED, SECOND, BEFORE, CPU, 200 * MB, true);
        off.next(BEFORE, 2 * SECOND, BEFORE, 0, 450 * MB, true);
        assertEquals(State.OFF, off.state(), "500 MB/s is not 25% above a 450 MB/s link");
    }

    @Test
    void anEmptyRoundKeepsWhatItKnows() {
        CompressionChooser chooser = new CompressionChooser();
        chooser.next(COMPRESSED, 2 * SECOND, BEFORE, CPU, 100 * MB, true);
        Decision d = chooser.next(0, SECOND / 1000, 0, 0, 0, true);
        assertTrue(d.compress(), d.reason());
    }

    @Test
    void aLinkThatNeverMadeTheSenderWaitKeepsCompressionOff() {
        CompressionChooser chooser = new CompressionChooser();
        // the probe: compressing looks fast against the 200 MB/s the sender managed, but the sender never waited
        Decision d = chooser.next(COMPRESSED / 16, SECOND / 2, BEFORE / 16, CPU / 16, 200 * MB, false);
        assertEquals(State.PROBE_OFF, chooser.state(), d.reason());
        d = chooser.next(BEFORE, SECOND * 2, BEFORE, 0, 200 * MB, false);
        assertEquals(State.OFF, chooser.state(), d.reason());
        assertTrue(d.reason().contains("the link kept up with uncompressed pages"), d.reason());
        // the same figures from a link the sender waited for: compressing would move pages faster
        d = chooser.next(BEFORE, SECOND * 2, BEFORE, 0, 200 * MB, true);
        assertEquals(State.ON, chooser.state(), d.reason());
    }
}
