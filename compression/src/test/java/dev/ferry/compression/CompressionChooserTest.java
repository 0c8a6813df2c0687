package dev.ferry.compression;

import dev.ferry.protocol.PageEncoding;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.compression.CompressionChooser.Decision;
import dev.ferry.compression.CompressionChooser.State;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Synthetic chunks of 8192 non-zero pages (32 MiB): what matters is how long each took, and how
 * long the compressor took on the pages it was tried on.
 */
class CompressionChooserTest {
    private static final long PAGES = 8192;
    private static final long MS = 1_000_000;
    private static final long US = 1_000;

    /**
     * The chunk took {@code ms}; the compressor took {@code costMicros} on each page it tried and
     * halved it; the sender worked 1 us a page and waited for the link the rest of the time.
     */
    private static Decision chunk(CompressionChooser chooser, long ms, double costMicros) {
        return chunk(chooser, ms, costMicros, Math.max(0, ms * MS - PAGES * US));
    }

    private static Decision chunk(CompressionChooser chooser, long ms, double costMicros, long waitedNanos) {
        int oneIn = chooser.current().compressOneIn();
        long tried = oneIn == 0 ? 0 : PAGES / oneIn;
        long compressNanos = (long) (tried * costMicros * US);
        long[] pages = new long[PageEncoding.COUNT];
        pages[PageEncoding.RAW] = PAGES - tried;
        pages[PageEncoding.LZ4] = tried;
        StageStats stats = new StageStats(pages, new long[PageEncoding.COUNT], 0, 0, tried * 4096, compressNanos,
                tried, tried * 4096, tried * 2048, 0, 0, 0, 0);
        return chooser.next(stats, ms * MS + (oneIn > 1 ? compressNanos : 0), waitedNanos);
    }

    /** A cheap compressor (1 us a page: LZ4 on text), as on a slow link. */
    private static Decision chunk(CompressionChooser chooser, long ms) {
        return chunk(chooser, ms, 1);
    }

    /** Past the warm-up chunk and the first samples: the first decision is due. */
    private static CompressionChooser warmedUp(long plainMs, double costMicros) {
        CompressionChooser chooser = new CompressionChooser();
        chunk(chooser, 10 * plainMs, costMicros);
        for (int i = CompressionChooser.FIRST_SAMPLES; i > 0; i--) {
            chunk(chooser, i * plainMs, costMicros);
        }
        return chooser;
    }

    /** The first choice made and checked once: ON or OFF, the usual probe interval ahead. */
    private static CompressionChooser settled(long plainMs, long compressedMs) {
        CompressionChooser chooser = warmedUp(plainMs, 1);
        chunk(chooser, compressedMs);
        for (int i = 0; i < CompressionChooser.FIRST_CHECK; i++) {
            chunk(chooser, chooser.current().compress() ? compressedMs : plainMs);
        }
        assertEquals(State.SAMPLE, chooser.state(), "the first choice is checked");
        chunk(chooser, plainMs);
        if (chooser.state() == State.PROBE_ON) {
            chunk(chooser, compressedMs);
        }
        return chooser;
    }

    @Test
    void theFirstChoiceIsCheckedSoonAsItRestsOnStartUpFigures() {
        CompressionChooser chooser = warmedUp(300, 1);
        Decision d = chunk(chooser, 200);
        assertEquals(State.ON, chooser.state(), "plain looked slow while starting up: " + d.reason());
        for (int i = 0; i < CompressionChooser.FIRST_CHECK; i++) {
            chunk(chooser, 200);
        }
        assertEquals(State.SAMPLE, chooser.state());
        d = chunk(chooser, 50);
        assertEquals(State.OFF, chooser.state(), "plain measured again, now up to speed: " + d.reason());
    }

    @Test
    void theFirstChunkWarmsUpThenASampleMeasuresPlainAndTheCompressorsCost() {
        CompressionChooser chooser = new CompressionChooser();
        assertEquals(State.SAMPLE, chooser.state());
        assertEquals(CompressionChooser.SAMPLE_ONE_IN, chooser.current().compressOneIn());
        Decision d = chunk(chooser, 500);
        assertEquals(State.SAMPLE, chooser.state(), "a slow first chunk decides nothing: " + d.reason());
        for (int i = 1; i < CompressionChooser.FIRST_SAMPLES; i++) {
            d = chunk(chooser, 80);
            assertEquals(State.SAMPLE, chooser.state(), "one sample decides nothing either: " + d.reason());
        }
        d = chunk(chooser, 50);
        assertEquals(State.PROBE_ON, chooser.state(), d.reason());
        assertTrue(d.compress(), "then a chunk compressed whole");
    }

    @Test
    void aCompressorSlowerThanPlainSendingIsNeverProbedWhole() {
        // 32 MiB plain in 50 ms: 6.1 us a page; LZ4 takes 12 us a page, as on sort's pages here
        CompressionChooser chooser = warmedUp(50, 12);
        assertEquals(State.OFF, chooser.state(), chooser.current().reason());
        assertTrue(chooser.current().reason().startsWith(
                "off: compressing takes 12.0 us a page, more than the sender waits for the link per page"
                        + " sent plain (5.1 us of 6.1 us, 671 MB/s)"),
                chooser.current().reason());
        for (int i = 0; i < 200; i++) {
            assertFalse(chunk(chooser, 50, 12).compress(), "chunk " + i + ": " + chooser.current().reason());
        }
    }

    @Test
    void aSenderThatHardlyWaitsForTheLinkNeverProbesCompression() {
        // loopback: 6.1 us a page, of which the sender waits 0.6 us; LZ4 takes 4 us, less than a
        // page takes to cross, but more than the waiting it could win back
        CompressionChooser chooser = new CompressionChooser();
        for (int i = 0; i <= CompressionChooser.FIRST_SAMPLES; i++) {
            chunk(chooser, 50, 4, 5 * MS);
        }
        assertEquals(State.OFF, chooser.state(), chooser.current().reason());
        for (int i = 0; i < 200; i++) {
            assertFalse(chunk(chooser, 50, 4, 5 * MS).compress(), "chunk " + i + ": " + chooser.current().reason());
        }
    }

    @Test
    void loopbackWherePlainPagesCrossFasterKeepsCompressionOff() {
        CompressionChooser chooser = warmedUp(50, 1);
        Decision d = chunk(chooser, 80);
        assertEquals(State.OFF, chooser.state(), d.reason());
        assertTrue(d.reason().startsWith("off: pages cross at 419 MB/s compressed (saving 50%) against 671 MB/s plain"),
                d.reason());
    }

    @Test
    void aSlowLinkWhereCompressedPagesCrossFasterTurnsItOn() {
        CompressionChooser chooser = warmedUp(335, 4);
        Decision d = chunk(chooser, 170, 4);
        assertEquals(State.ON, chooser.state(), d.reason());
        chooser = settled(335, 170);
        assertEquals(State.ON, chooser.state(), "and checked: " + chooser.current().reason());
        for (int i = 0; i < CompressionChooser.PROBE_INTERVAL - 1; i++) {
            assertTrue(chunk(chooser, 170, 4).compress(), chooser.current().reason());
        }
    }

    @Test
    void switchingOnNeedsAMarginStayingOnDoesNot() {
        CompressionChooser off = warmedUp(100, 1);
        chunk(off, 87);
        assertEquals(State.OFF, off.state(), "15% faster is within the noise: stays off");
        CompressionChooser on = settled(100, 50);
        assertEquals(State.ON, on.state());
        for (int i = 0; i < 3; i++) {
            chunk(on, 97);
        }
        assertEquals(State.ON, on.state(), "still faster than plain: stays on");
    }

    @Test
    void slowChunksFlipTheChoiceOnlyWhenTheyLast() {
        CompressionChooser chooser = settled(100, 50);
        chunk(chooser, 50);
        assertEquals(State.ON, chooser.state());
        Decision d = chunk(chooser, 400);
        chunk(chooser, 400);
        assertEquals(State.ON, chooser.state(), "a burst of guest writes slowed two chunks: " + d.reason());
        chunk(chooser, 400);
        assertEquals(State.SAMPLE, chooser.state(), "three slow chunks in a row: measure plain again");
        d = chunk(chooser, 100);
        assertEquals(State.OFF, chooser.state(), "plain is faster now: " + d.reason());
    }

    @Test
    void aLosingModeIsProbedLessAndLessOftenButStillProbed() {
        CompressionChooser chooser = settled(50, 80);
        assertEquals(State.OFF, chooser.state());
        int[] gaps = new int[3];
        for (int probe = 0; probe < gaps.length; probe++) {
            int offChunks = 0;
            while (chunk(chooser, 50).compressOneIn() == 0) {
                offChunks++;
                assertTrue(offChunks < 1000, "never probed again");
            }
            assertEquals(State.SAMPLE, chooser.state(), "a probe starts with a sample");
            Decision d = chunk(chooser, 50);
            assertEquals(State.PROBE_ON, chooser.state(), "the sample leaves it open: " + d.reason());
            d = chunk(chooser, 80);
            assertEquals(State.OFF, chooser.state(), d.reason());
            gaps[probe] = offChunks;
        }
        assertEquals(CompressionChooser.PROBE_INTERVAL - 1, gaps[0]);
        assertTrue(gaps[1] > gaps[0] && gaps[2] > gaps[1], "the interval grows while probes lose: "
                + Arrays.toString(gaps));
    }

    @Test
    void aProbeThatWinsSwitchesModes() {
        CompressionChooser chooser = settled(50, 80);
        chunk(chooser, 50);
        assertEquals(State.OFF, chooser.state());
        // the link got slow: slow plain chunks make the compressed rate measured before look
        // better, so a probe measures it again
        chunk(chooser, 100);
        chunk(chooser, 100);
        assertEquals(State.OFF, chooser.state(), "two slow chunks are not yet a trend");
        Decision d = chunk(chooser, 100);
        assertEquals(State.SAMPLE, chooser.state(), d.reason());
        chunk(chooser, 100);
        assertEquals(State.PROBE_ON, chooser.state());
        d = chunk(chooser, 40);
        assertEquals(State.ON, chooser.state(), d.reason());
    }

    @Test
    void theLastRoundKeepsTheSteadyChoiceWithoutProbes() {
        CompressionChooser on = settled(335, 170);
        assertEquals(State.ON, on.state());
        for (int i = 0; i < CompressionChooser.PROBE_INTERVAL - 1; i++) {
            chunk(on, 170);
        }
        Decision d = on.lastRound();
        assertTrue(d.compress(), d.reason());
        for (int i = 0; i < 3 * CompressionChooser.PROBE_INTERVAL; i++) {
            assertEquals(d, chunk(on, 500), "no probe, whatever the chunks measure");
        }

        CompressionChooser barely = settled(100, 50);
        for (int i = 0; i < 3; i++) {
            chunk(barely, 97);
        }
        assertEquals(State.ON, barely.state(), "3% faster keeps it on while later chunks can correct it");
        d = barely.lastRound();
        assertFalse(d.compress(), "the last round needs the lead a switch on needs: " + d.reason());

        CompressionChooser probing = warmedUp(335, 1);
        assertEquals(State.PROBE_ON, probing.state());
        d = probing.lastRound();
        assertEquals(0, d.compressOneIn(), "no choice was made yet: plain, not the probe: " + d.reason());
    }

    @Test
    void aChunkOfZeroPagesTellsNothing() {
        CompressionChooser chooser = warmedUp(335, 1);
        chunk(chooser, 170);
        Decision before = chooser.current();
        long[] pages = new long[PageEncoding.COUNT];
        pages[PageEncoding.ZERO] = PAGES;
        StageStats zeros = new StageStats(pages, new long[PageEncoding.COUNT], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        assertEquals(before, chooser.next(zeros, 3 * MS, 0), "zero pages cross fast either way");
    }
}
