package dev.ferry.qemu;

import dev.ferry.core.DirtyLog;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import net.openhft.hashing.LongTupleHashFunction;

/**
 * A dirty log for a hypervisor in another process that shares no dirty log with Ferry: each page
 * is dirty when its content's 128-bit hash (XXH3-128) differs from the hash of the copy of it that
 * was last sent.
 *
 * <p>The sent copies' hashes come from {@link #sending}, which the migration calls with each copy
 * it is about to send, taken out of guest memory once; so a page that changed and changed back
 * between a scan and its send is still caught at the next scan (comparing with the hash taken at
 * the scan would miss it, and the test guest wraps a byte of every page each 256 passes). One
 * {@link #sync} reads every page once; with the guest paused it is exact, but for a collision of
 * the 128-bit hash. It costs a full read of guest RAM per round (measured in the README) and 16
 * bytes per page, off-heap and mapped lazily.
 */
public final class ContentHashLog implements DirtyLog, AutoCloseable {
    /** Pages a scanning thread claims at a time: 64 words of the bitmap. */
    private static final long CHUNK_PAGES = 4096;
    private static final LongTupleHashFunction XXH3_128 = LongTupleHashFunction.xx128();
    /** Each thread's result pair: the hash writes its two longs there, no allocation per page. */
    private static final ThreadLocal<long[]> RESULTS = ThreadLocal.withInitial(XXH3_128::newResultArray);
    private static final long[] ZERO = zeroPageHash();

    private final MemorySegment guest;
    private final long pageCount;
    private final GuestMemory slotMemory;
    /**
     * Two longs per page: the XXH3-128 of the copy last sent, XORed with a zero page's, so that
     * the slots' zeros (a fresh mapping) say what a fresh destination holds: a page of zeros. A
     * zero page the sender sends without a copy (untouched anonymous memory) is then already right.
     */
    private final MemorySegment slots;
    private final NanoClock clock;
    /** One single-thread executor per helper: with the calling thread, a scan runs on every core. */
    private final List<ExecutorService> scanners = new ArrayList<>();
    /**
     * What each scanning thread found dirty in the current sync, the caller's last: the threads
     * write disjoint words, but a set's page count is one field, which concurrent sets would race
     * on (a sync then counted fewer pages than it set, and the stop-and-copy's check that no stale
     * page was left saw a negative count). They are merged after the scan.
     */
    private final PageBitmap[] found;
    private long lastScanNanos;

    private static long[] zeroPageHash() {
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            return XXH3_128.hashMemory(arena.allocate(GuestMemory.PAGE_SIZE).address(), GuestMemory.PAGE_SIZE);
        }
    }

    /** A log of {@code memory}'s pages, every one that is not zeros dirty until sent; scans on as many threads as there are cores. */
    public ContentHashLog(GuestMemory memory, NanoClock clock) {
        this(memory, clock, Runtime.getRuntime().availableProcessors());
    }

    /**
     * A log that scans on {@code threads} threads (the caller's among them): the scan in the
     * downtime runs while the guest's vCPUs are stopped, so every core is free for it.
     */
    public ContentHashLog(GuestMemory memory, NanoClock clock, int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.clock = clock;
        for (int i = 1; i < threads; i++) {
            scanners.add(Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().name("ferry-scan-" + i).factory()));
        }
        this.guest = memory.unchecked();
        this.pageCount = memory.pageCount();
        this.found = new PageBitmap[threads];
        for (int i = 0; i < threads; i++) {
            found[i] = new PageBitmap(pageCount);
        }
        long bytes = pageCount * 2 * Long.BYTES;
        this.slotMemory = GuestMemory.anonymous((bytes + GuestMemory.PAGE_SIZE - 1) & -GuestMemory.PAGE_SIZE);
        this.slots = slotMemory.unchecked();
    }

    @Override
    public long sync(PageBitmap into) {
        long began = clock.nanoTime();
        AtomicLong next = new AtomicLong();
        List<Future<Long>> helpers = new ArrayList<>(scanners.size());
        for (int i = 0; i < scanners.size(); i++) {
            PageBitmap mine = found[i];
            helpers.add(scanners.get(i).submit(() -> scan(into, mine, next)));
        }
        long added = scan(into, found[scanners.size()], next);
        for (Future<Long> helper : helpers) {
            added += join(helper);
        }
        for (PageBitmap mine : found) {
            into.or(mine);
            mine.clearAll();
        }
        lastScanNanos = clock.nanoTime() - began;
        return added;
    }

    /**
     * Scans the chunks this thread claims from {@code next}, into {@code mine} the dirty pages
     * that {@code into} does not hold yet.
     */
    private long scan(PageBitmap into, PageBitmap mine, AtomicLong next) {
        long[] hash = RESULTS.get();
        long added = 0;
        long base = guest.address();
        for (long first; (first = next.getAndAdd(CHUNK_PAGES)) < pageCount; ) {
            for (long page = first, end = Math.min(pageCount, first + CHUNK_PAGES); page < end; page++) {
                XXH3_128.hashMemory(base + (page << GuestMemory.PAGE_SHIFT), GuestMemory.PAGE_SIZE, hash);
                long slot = page << 1;
                if (((hash[0] ^ ZERO[0]) != slots.getAtIndex(ValueLayout.JAVA_LONG, slot)
                        || (hash[1] ^ ZERO[1]) != slots.getAtIndex(ValueLayout.JAVA_LONG, slot + 1)) && !into.get(page)) {
                    mine.set(page);
                    added++;
                }
            }
        }
        return added;
    }

    private static long join(Future<Long> helper) {
        try {
            return helper.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while scanning guest memory", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("a scanning thread failed", e.getCause());
        }
    }

    /** Records the copy of {@code page} at {@code offset} of {@code copy} (native) as the one sent. */
    @Override
    public void sending(long page, MemorySegment copy, long offset) {
        java.util.Objects.checkIndex(page, pageCount);
        java.util.Objects.checkFromIndexSize(offset, GuestMemory.PAGE_SIZE, copy.byteSize());
        long[] hash = RESULTS.get();
        XXH3_128.hashMemory(copy.address() + offset, GuestMemory.PAGE_SIZE, hash);
        long slot = page << 1;
        slots.setAtIndex(ValueLayout.JAVA_LONG, slot, hash[0] ^ ZERO[0]);
        slots.setAtIndex(ValueLayout.JAVA_LONG, slot + 1, hash[1] ^ ZERO[1]);
    }

    /** How long the last {@link #sync} took, in nanoseconds: the scan's cost per round. */
    public long lastScanNanos() {
        return lastScanNanos;
    }

    @Override
    public void close() {
        scanners.forEach(ExecutorService::shutdownNow);
        slotMemory.close();
    }
}
