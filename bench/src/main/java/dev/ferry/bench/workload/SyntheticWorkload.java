package dev.ferry.bench.workload;

import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageGate;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.function.IntFunction;

/**
 * A synthetic guest: each write stores 64 bytes at a random 64-byte-aligned offset of a page its
 * {@link PageChooser} picks, paced so that the vCPUs together dirty {@code mbps} x 10^6 bytes of
 * pages per second.
 */
final class SyntheticWorkload extends GuestWorkload {
    /** One writer thread per this many MB/s, at most {@link #MAX_THREADS}. */
    static final double MBPS_PER_THREAD = 200;
    static final int MAX_THREADS = 2;
    /** Writes per step at most, so a pause is seen within a few microseconds. */
    static final int BATCH = 64;

    private final long memoryBytes;
    private final Fill fill;
    private final long seed;
    private final double mbps;
    private final IntFunction<PageChooser> choosers;
    private final int threads;
    /**
     * The fill's and the vCPUs' contents, made once: made again as the vCPUs start, its text
     * generation and its compilation by C2 (0.55 s of compiler time, JFR) ran inside the measured
     * migration, on the cores the migration had.
     */
    private PageContent content;

    /**
     * @param choosers the chooser of vCPU {@code i} of {@link #threads(double)}; unused when {@code mbps} is 0
     */
    SyntheticWorkload(String spec, long memoryBytes, Fill fill, long seed, double mbps,
                      IntFunction<PageChooser> choosers, NanoClock clock) {
        super(spec, clock);
        this.memoryBytes = memoryBytes;
        this.fill = fill;
        this.seed = seed;
        this.mbps = mbps;
        this.choosers = choosers;
        this.threads = threads(mbps);
    }

    static int threads(double mbps) {
        return mbps <= 0 ? 0 : (int) Math.min(MAX_THREADS, Math.max(1, Math.ceil(mbps / MBPS_PER_THREAD)));
    }

    @Override
    public long memoryBytes() {
        return memoryBytes;
    }

    @Override
    public void fill(GuestMemory memory) {
        checkMemory(memory);
        fill.apply(memory, content(), seed);
    }

    private synchronized PageContent content() {
        if (content == null) {
            content = new PageContent(fill, seed);
        }
        return content;
    }

    @Override
    Vcpu[] createVcpus(GuestMemory memory) {
        PageContent content = content();
        double pagesPerSecond = mbps * 1e6 / GuestMemory.PAGE_SIZE / threads;
        Vcpu[] vcpus = new Vcpu[threads];
        for (int i = 0; i < threads; i++) {
            vcpus[i] = new Writer(this, content, choosers.apply(i), new SplittableRandom(seed * 31 + i + 1),
                    new TokenBucket(clock, pagesPerSecond));
        }
        return vcpus;
    }

    /** One writer vCPU. */
    static final class Writer extends Vcpu {
        private final PageContent content;
        private final PageChooser chooser;
        private final SplittableRandom random;
        private final TokenBucket bucket;
        /** Where a write is composed before it is stored: native, so any path to memory can copy it. */
        private final MemorySegment staging = java.lang.foreign.Arena.ofAuto().allocate(PageContent.WRITE_SIZE, 64);

        Writer(GuestWorkload owner, PageContent content, PageChooser chooser, SplittableRandom random,
               TokenBucket bucket) {
            super(owner);
            this.content = content;
            this.chooser = chooser;
            this.random = random;
            this.bucket = bucket;
        }

        @Override
        boolean step(Target target) {
            long allowed = bucket.take(BATCH);
            if (allowed == 0) {
                sleep(bucket.nanosUntilToken());
                return true;
            }
            DirtyBitmap log = target.log();
            PageGate gate = target.gate();
            for (long i = 0; i < allowed; i++) {
                if (owner.pauseRequested) {
                    bucket.refund(allowed - i);
                    return true;
                }
                long page = chooser.next(random);
                gate.awaitPresent(page);
                long offset = (page << GuestMemory.PAGE_SHIFT) + ((long) random.nextInt(64) << 6);
                content.compose(staging, page, random);
                gate.store(staging, 0, target.memory(), offset, PageContent.WRITE_SIZE);
                log.mark(page);
                wrote();
            }
            return true;
        }

        @Override
        void resumed(long nanos) {
            bucket.skipTo(owner.clock.nanoTime());
        }
    }
}
