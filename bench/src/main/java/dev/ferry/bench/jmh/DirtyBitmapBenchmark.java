package dev.ferry.bench.jmh;

import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.PageBitmap;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Core's {@link DirtyBitmap}, single-threaded, for a 1 GiB guest: what a guest write pays to
 * mark its page, and what a round pays to sync the log into the migration's {@link PageBitmap}.
 * One operation is one page, so every score is pages per second; {@link #memoryCopy} (copying a
 * 4 KiB page) in the same run is the yardstick: a mark or a sync is worth it when it costs a
 * small fraction of moving the page.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class DirtyBitmapBenchmark {
    private static final int PAGE = 4096;
    /** A 1 GiB guest. */
    private static final int GUEST_PAGES = 1 << 18;
    /** Pages a benchmark touches per call: one per 64-bit word, every word of a 256 MiB stretch. */
    private static final int PAGES = 4096;
    private static final int STRIDE = 64;

    private DirtyBitmap log;
    private PageBitmap bitmap;
    private Arena arena;
    private MemorySegment from;
    private MemorySegment to;

    @Setup
    public void allocate() {
        log = new DirtyBitmap(GUEST_PAGES);
        bitmap = new PageBitmap(GUEST_PAGES);
        arena = Arena.ofShared();
        from = arena.allocate((long) PAGES * PAGE, PAGE);
        to = arena.allocate((long) PAGES * PAGE, PAGE);
        for (long i = 0; i < from.byteSize(); i += 8) {
            from.set(ValueLayout.JAVA_LONG, i, i * 0x9E3779B97F4A7C15L);
        }
    }

    @TearDown
    public void free() {
        arena.close();
    }

    /**
     * A write to a clean page (the atomic OR), then the round's sync that takes it: each page
     * marked once and synced once, as in a round of a guest with few hot pages.
     */
    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long markThenSync() {
        for (int i = 0; i < PAGES; i++) {
            log.mark((long) i * STRIDE);
        }
        long added = log.sync(bitmap);
        bitmap.clearAll();
        return added;
    }

    /** A write to a page already dirty in this round: the fence and re-read, no atomic. */
    @Benchmark
    @OperationsPerInvocation(PAGES)
    public DirtyBitmap markAlreadyDirty() {
        for (int i = 0; i < PAGES; i++) {
            log.mark((long) i * STRIDE);
        }
        return log;
    }

    /** The sync of a clean log, per page of the guest: the scan every round pays even when idle. */
    @Benchmark
    @OperationsPerInvocation(GUEST_PAGES)
    public long syncClean() {
        return log.sync(bitmap);
    }

    /** The bulk round's start: every page marked, then all taken by one sync, per page of the guest. */
    @Benchmark
    @OperationsPerInvocation(GUEST_PAGES)
    public long markAllThenSync() {
        log.markAll();
        long added = log.sync(bitmap);
        bitmap.clearAll();
        return added;
    }

    /** The yardstick: copying a 4 KiB page in memory, per page. */
    @Benchmark
    @OperationsPerInvocation(PAGES)
    public MemorySegment memoryCopy() {
        MemorySegment.copy(from, 0, to, 0, (long) PAGES * PAGE);
        return to;
    }
}
