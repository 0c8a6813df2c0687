package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.PageDigest;
import java.lang.foreign.MemorySegment;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/**
 * A 64 GiB guest that is zero but for a few written pages migrates and verifies with the default
 * peer timeout: the bulk round is mostly zero runs, and neither side may look silent meanwhile
 * (issue 12: the destination once timed out on a 64 GiB guest of zeros). Nor may the thousands of
 * short frames its zero runs make hold more direct memory than the bytes they carry: queued in
 * full-sized frame buffers they once took 1.8 GiB and starved every migration after it in the JVM.
 */
class SparseGuestMigrationTest {
    private static final long SIZE = 64L << 30;
    private static final int WRITTEN = 256;
    /** Both sides' buffers, decoders and socket queues fit in far less; the fault took 1.8 GiB. */
    private static final long PEAK_LIMIT = 256L << 20;

    @Test
    void aSixtyFourGibGuestOfZerosMigratesAndVerifies() throws Exception {
        try (GuestMemory source = GuestMemory.anonymous(SIZE); GuestMemory target = GuestMemory.anonymous(SIZE)) {
            long[] written = new long[WRITTEN];
            SplittableRandom random = new SplittableRandom(12);
            for (int i = 0; i < WRITTEN; i++) {
                written[i] = random.nextLong(source.pageCount());
                MemorySegment page = source.segment().asSlice(written[i] << GuestMemory.PAGE_SHIFT, GuestMemory.PAGE_SIZE);
                for (long off = 0; off < GuestMemory.PAGE_SIZE; off += 8) {
                    page.set(ValueLayout.JAVA_LONG, off, random.nextLong());
                }
            }
            DirtyBitmap dirty = new DirtyBitmap(source.pageCount());
            RecordingVm sourceVm = new RecordingVm();
            RecordingVm targetVm = new RecordingVm();
            long began = System.nanoTime();
            try (IncomingMigration in = Migration.destination(targetVm).memory(target).start();
                    DirectMemoryPeak peak = new DirectMemoryPeak()) {
                MigrationReport out = Migration.source(source, dirty, sourceVm)
                        .parameters(MigrationParameters.builder().build())
                        .connect(in.address()).start().result().get(10, TimeUnit.MINUTES);
                MigrationReport dest = in.result().get(1, TimeUnit.MINUTES);
                System.out.printf("64 GiB sparse guest: %.1f s, %d bytes on the wire%n",
                        (System.nanoTime() - began) / 1e9, out.bytesSent());
                assertEquals(MigrationState.COMPLETED, out.outcome(), out.error());
                assertTrue(out.verified(), out.error());
                assertEquals(MigrationState.COMPLETED, dest.outcome(), dest.error());
                assertTrue(dest.verified() && dest.destinationResumed());
                assertEquals(1, targetVm.resumes.get());
                for (long page : written) {
                    long at = page << GuestMemory.PAGE_SHIFT;
                    assertEquals(-1, source.segment().asSlice(at, GuestMemory.PAGE_SIZE)
                            .mismatch(target.segment().asSlice(at, GuestMemory.PAGE_SIZE)), "page " + page);
                }
                assertEquals(out.digest(), dest.digest());
                assertTrue(peak.bytes() < PEAK_LIMIT, "direct memory peaked at " + (peak.bytes() >> 20) + " MiB");
            }
        }
    }

    /** The most direct memory in use while it is open, read by a watcher thread every millisecond. */
    private static final class DirectMemoryPeak implements AutoCloseable {
        private final BufferPoolMXBean direct = ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(pool -> pool.getName().equals("direct")).findFirst().orElseThrow();
        private final AtomicLong peak = new AtomicLong();
        private final Thread watcher = Thread.ofPlatform().daemon().start(this::watch);

        private void watch() {
            while (!Thread.currentThread().isInterrupted()) {
                peak.accumulateAndGet(direct.getMemoryUsed(), Math::max);
                LockSupport.parkNanos(1_000_000);
            }
        }

        long bytes() {
            return Math.max(peak.get(), direct.getMemoryUsed());
        }

        @Override
        public void close() throws InterruptedException {
            watcher.interrupt();
            watcher.join();
        }
    }
}
