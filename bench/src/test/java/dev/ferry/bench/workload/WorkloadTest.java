package dev.ferry.bench.workload;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.bench.trace.TraceFormatException;
import dev.ferry.bench.trace.TraceWriter;
import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import dev.ferry.core.PageGate;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WorkloadTest {
    private static final long MEMORY = 4L << 20;

    @TempDir
    Path dir;

    static PageBitmap dirty(DirtyBitmap log) {
        PageBitmap bitmap = new PageBitmap(log.pageCount());
        log.sync(bitmap);
        return bitmap;
    }

    static PageBitmap changed(GuestMemory before, GuestMemory after) {
        PageBitmap bitmap = new PageBitmap(before.pageCount());
        for (long p = 0; p < before.pageCount(); p++) {
            long o = p * GuestMemory.PAGE_SIZE;
            if (MemorySegment.mismatch(before.segment(), o, o + 4096, after.segment(), o, o + 4096) >= 0) {
                bitmap.set(p);
            }
        }
        return bitmap;
    }

    static GuestMemory copy(GuestMemory memory) {
        GuestMemory copy = GuestMemory.anonymous(memory.byteSize());
        MemorySegment.copy(memory.segment(), 0, copy.segment(), 0, memory.byteSize());
        return copy;
    }

    static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(5);
        }
    }

    static void assertSame(PageBitmap expected, PageBitmap actual) {
        assertEquals(expected.cardinality(), actual.cardinality());
        for (long p = expected.nextSetBit(0); p >= 0; p = expected.nextSetBit(p + 1)) {
            assertTrue(actual.get(p), "page " + p);
        }
    }

    @Test
    void writesLandInMemoryAndTheLogMarksExactlyTheWrittenPagesAcrossPauseAndHandOver() throws Exception {
        try (Workload workload = Workloads.parse("uniform:20", MEMORY, Fill.RANDOM, 1, false);
             GuestMemory source = GuestMemory.anonymous(MEMORY)) {
            workload.fill(source);
            GuestMemory before = copy(source);
            DirtyBitmap log = new DirtyBitmap(source.pageCount());
            workload.start(source, log, PageGate.OPEN);
            await(() -> workload.pagesWritten() > 300, "writes");
            workload.pause();
            long written = workload.pagesWritten();
            long digest = PageDigest.scan(source);
            PageBitmap dirty = dirty(log);
            assertTrue(dirty.cardinality() > 100, "dirty " + dirty.cardinality());
            assertSame(changed(before, source), dirty);

            Thread.sleep(100); // paused: nothing may change
            assertEquals(written, workload.pagesWritten());
            assertEquals(digest, PageDigest.scan(source));
            assertTrue(dirty(log).isEmpty());

            // Hand-over: the destination continues from a copy; the source stays as it was.
            try (GuestMemory destination = copy(source)) {
                GuestMemory handedOver = copy(destination);
                DirtyBitmap destinationLog = new DirtyBitmap(destination.pageCount());
                workload.resume(destination, destinationLog, PageGate.OPEN);
                await(() -> workload.pagesWritten() > written + 200, "writes after resume");
                workload.pause();
                assertEquals(digest, PageDigest.scan(source));
                assertTrue(dirty(log).isEmpty());
                assertSame(changed(handedOver, destination), dirty(destinationLog));
                assertTrue(workload.pagesWritten() > written);
                handedOver.close();
            }
            assertNull(workload.failure());
            before.close();
        }
    }

    @Test
    void gateIsAskedBeforeEveryWrite() throws Exception {
        AtomicLong asked = new AtomicLong();
        try (Workload workload = Workloads.parse("hotset:0.25:20", MEMORY, Fill.TEXT, 2, false);
             GuestMemory memory = GuestMemory.anonymous(MEMORY)) {
            workload.fill(memory);
            GuestMemory before = copy(memory);
            DirtyBitmap log = new DirtyBitmap(memory.pageCount());
            workload.start(memory, log, page -> asked.incrementAndGet());
            await(() -> workload.pagesWritten() > 200, "writes");
            workload.pause();
            assertEquals(workload.pagesWritten(), asked.get());
            PageBitmap dirty = dirty(log);
            assertTrue(dirty.nextSetBit(memory.pageCount() / 4) < 0, "hotset writes only the first quarter");
            assertSame(changed(before, memory), dirty);
            before.close();
        }
    }

    @Test
    void sequentialSweepsInOrder() throws Exception {
        try (Workload workload = Workloads.parse("sequential:20", MEMORY, Fill.RANDOM, 3, false);
             GuestMemory memory = GuestMemory.anonymous(MEMORY)) {
            DirtyBitmap log = new DirtyBitmap(memory.pageCount());
            workload.start(memory, log, PageGate.OPEN);
            await(() -> workload.pagesWritten() > 100, "writes");
            workload.pause();
            PageBitmap dirty = dirty(log);
            long firstClean = dirty.nextClearBit(0);
            assertTrue(firstClean == -1 || dirty.nextSetBit(firstClean) == -1, "dirty pages form one prefix");
            assertEquals(Math.min(workload.pagesWritten(), memory.pageCount()), dirty.cardinality());
        }
    }

    @Test
    void rateIsRoughlyHonoured() throws Exception {
        try (Workload workload = Workloads.parse("uniform:40", 64L << 20, Fill.RANDOM, 4, false);
             GuestMemory memory = GuestMemory.anonymous(64L << 20)) {
            workload.start(memory, new DirtyBitmap(memory.pageCount()), PageGate.OPEN);
            long start = System.nanoTime();
            Thread.sleep(500);
            long pages = workload.pagesWritten();
            double seconds = (System.nanoTime() - start) / 1e9;
            double mbps = pages * 4096.0 / seconds / 1e6;
            assertTrue(mbps > 20 && mbps < 60, "measured " + mbps + " MB/s for 40");
        }
    }

    @Test
    void idleNeverWritesAndPausesAtOnce() {
        try (Workload workload = Workloads.parse("idle", MEMORY, Fill.MIXED, 5, false);
             GuestMemory memory = GuestMemory.anonymous(MEMORY)) {
            DirtyBitmap log = new DirtyBitmap(memory.pageCount());
            workload.start(memory, log, PageGate.OPEN);
            workload.pause();
            workload.resume(memory, log, PageGate.OPEN);
            assertEquals(0, workload.pagesWritten());
            assertTrue(dirty(log).isEmpty());
        }
    }

    @Test
    void rejectsBadSpecs() {
        for (String spec : new String[] {"uniform", "uniform:x", "uniform:-1", "hotset:0:10", "hotset:1.5:10",
                "zipf:0:10", "zipf:1", "bogus:1", "idle:3", "trace:"}) {
            assertThrows(IllegalArgumentException.class, () -> Workloads.parse(spec, MEMORY, Fill.RANDOM, 1, false),
                    spec);
        }
    }

    /** A small trace; returns the memory it ends in (image then every epoch applied). */
    private static byte[] finalState(TraceWriter w) {
        byte[] state = new byte[(int) (w.pageCount * 4096)];
        for (int i = 0; i < w.imageIndices.size(); i++) {
            System.arraycopy(w.imagePages.get(i), 0, state, (int) (w.imageIndices.get(i) * 4096), 4096);
        }
        for (TraceWriter.Epoch epoch : w.epochs) {
            for (int i = 0; i < epoch.indices.size(); i++) {
                System.arraycopy(epoch.pages.get(i), 0, state, (int) (epoch.indices.get(i) * 4096), 4096);
            }
        }
        return state;
    }

    @Test
    void traceReplayAppliesExactlyTheEpochPages() throws Exception {
        TraceWriter w = TraceWriter.random(256, 100, 6, 20, 9);
        Path trace = dir.resolve("t.mtrace.zst");
        Files.write(trace, TraceWriter.zstd(w.bytes()));
        PageBitmap union = new PageBitmap(256);
        long epochPages = 0;
        for (TraceWriter.Epoch epoch : w.epochs) {
            epoch.indices.forEach(union::set);
            epochPages += epoch.indices.size();
        }
        long total = epochPages;
        try (Workload workload = Workloads.parse("trace:" + trace + ":100", 0, null, 0, false);
             GuestMemory memory = GuestMemory.anonymous(workload.memoryBytes())) {
            assertEquals(256 * 4096, workload.memoryBytes());
            workload.fill(memory);
            DirtyBitmap log = new DirtyBitmap(memory.pageCount());
            workload.start(memory, log, PageGate.OPEN);
            await(() -> workload.pagesWritten() == total, "replay");
            workload.pause();
            assertArrayEquals(finalState(w), memory.segment().toArray(ValueLayout.JAVA_BYTE));
            assertSame(union, dirty(log));
            assertNull(workload.failure());
        }
    }

    @Test
    void traceReplayHonoursEpochTimesAndLoops() throws Exception {
        TraceWriter w = TraceWriter.random(64, 10, 4, 5, 10); // epochs end at 10, 20, 30, 40 ms
        Path trace = dir.resolve("loop.mtrace");
        Files.write(trace, w.bytes());
        try (Workload workload = Workloads.parse("trace:" + trace + ":0.5", 0, null, 0, true);
             GuestMemory memory = GuestMemory.anonymous(workload.memoryBytes())) {
            workload.fill(memory);
            long start = System.nanoTime();
            workload.start(memory, new DirtyBitmap(memory.pageCount()), PageGate.OPEN);
            await(() -> workload.pagesWritten() >= 20, "first pass");
            assertTrue(System.nanoTime() - start >= 75_000_000L, "at speed 0.5 a pass takes 80 ms");
            await(() -> workload.pagesWritten() >= 45, "second pass");
            assertNull(workload.failure());
        }
    }

    @Test
    void malformedEpochFoundDuringReplayIsReportedAndStopsReplay() throws Exception {
        TraceWriter w = TraceWriter.random(64, 4, 3, 4, 11);
        w.epochs.get(2).timeMicros = 1; // not increasing
        Path trace = dir.resolve("bad.mtrace.zst");
        Files.write(trace, TraceWriter.zstd(w.bytes()));
        try (Workload workload = Workloads.parse("trace:" + trace + ":100", 0, null, 0, false);
             GuestMemory memory = GuestMemory.anonymous(workload.memoryBytes())) {
            workload.fill(memory);
            workload.start(memory, new DirtyBitmap(memory.pageCount()), PageGate.OPEN);
            await(() -> workload.failure() != null, "failure");
            TraceFormatException e = assertInstanceOf(TraceFormatException.class, workload.failure());
            assertTrue(e.getMessage().contains("strictly increasing"), e.getMessage());
            assertEquals(8, workload.pagesWritten());
            workload.pause(); // the replay thread has stopped; pausing still works
        }
    }

    @Test
    void fillIsDeterministicAndFollowsItsStyle() {
        try (GuestMemory a = GuestMemory.anonymous(MEMORY); GuestMemory b = GuestMemory.anonymous(MEMORY)) {
            Fill.MIXED.apply(a, 7);
            Fill.MIXED.apply(b, 7);
            assertEquals(-1, a.segment().mismatch(b.segment()));
            Fill.MIXED.apply(b, 8);
            assertNotEquals(-1, a.segment().mismatch(b.segment()));

            Map<String, Integer> kinds = new HashMap<>();
            for (long p = 0; p < a.pageCount(); p++) {
                kinds.merge(kind(a, p), 1, Integer::sum);
            }
            for (String kind : new String[] {"zero", "text", "random"}) {
                int n = kinds.getOrDefault(kind, 0);
                assertTrue(n > a.pageCount() / 4 && n < a.pageCount() / 2.4, kind + " " + kinds);
            }
            Fill.TEXT.apply(a, 1);
            for (long p = 0; p < a.pageCount(); p++) {
                assertEquals("text", kind(a, p));
            }
            Fill.RANDOM.apply(a, 1);
            for (long p = 0; p < a.pageCount(); p++) {
                assertEquals("random", kind(a, p));
            }
        }
    }

    private static String kind(GuestMemory memory, long page) {
        byte[] bytes = memory.segment().asSlice(page * 4096, 4096).toArray(ValueLayout.JAVA_BYTE);
        boolean zero = true;
        boolean ascii = true;
        for (byte b : bytes) {
            zero &= b == 0;
            ascii &= b == '\n' || (b >= 0x20 && b < 0x7F);
        }
        return zero ? "zero" : ascii ? "text" : "random";
    }

    @Test
    void fillsOneGibQuickly() {
        try (GuestMemory memory = GuestMemory.anonymous(1L << 30)) {
            for (Fill fill : Fill.values()) {
                long start = System.nanoTime();
                fill.apply(memory, 1);
                double seconds = (System.nanoTime() - start) / 1e9;
                System.out.printf("fill %s of 1 GiB: %.2f s%n", fill, seconds);
                assertTrue(seconds < 20, fill + " took " + seconds + " s");
            }
        }
    }

    @Test
    void textTimestampsAreWhatInstantWrites() {
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < 100_000; i++) {
            // the generator's range, whole seconds (no fraction) among them, and a few far years
            long millis = i % 10 == 0 ? 1_763_870_000_000L + 1000L * random.nextInt(1_000_000)
                    : i % 1000 == 1 ? random.nextLong(0, 253_402_300_799_000L) : 1_763_870_000_000L + random.nextLong(2_000_000_000L);
            StringBuilder out = new StringBuilder();
            PageContent.appendTimestamp(out, millis);
            assertEquals(java.time.Instant.ofEpochMilli(millis).toString(), out.toString(), "at " + millis);
        }
    }
}
