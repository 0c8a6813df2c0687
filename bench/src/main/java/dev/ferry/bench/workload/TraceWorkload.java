package dev.ferry.bench.workload;

import dev.ferry.bench.trace.TraceEpoch;
import dev.ferry.bench.trace.TraceReader;
import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageGate;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * Replays a memory trace: {@link #fill} loads its image; one vCPU then writes each epoch's pages
 * at the epoch's time divided by {@code speed} (paused time excluded), marking each page dirty after
 * storing it. After the last epoch it stops, or with {@code loop} replays the epochs again from
 * the first, shifted by the trace's duration. A malformed trace found on the way stops the replay
 * and is reported by {@link #failure()}.
 *
 * <p>A run usually ends before the replay reaches the end of the trace, so {@link #close} reads
 * (and so checks) the rest of the current pass once the vCPU has stopped: a bad checksum or a
 * truncated last epoch is reported by {@link #failure()} too. This costs one decompression of the
 * epochs not replayed, after the run rather than during it; validating the whole trace up front
 * instead would delay every run by a full pass (about 1.5 s for the shared traces).
 */
final class TraceWorkload extends GuestWorkload {
    private final Path path;
    private final double speed;
    private final boolean loop;
    private final long memoryBytes;
    /** Opened by the constructor (for the header); {@link #fill} reads its image; the vCPU its epochs. */
    private TraceReader reader;
    /** The replaying vCPU once started: {@link #release} finishes its pass. */
    private Replayer replayer;

    TraceWorkload(String spec, Path path, double speed, boolean loop, NanoClock clock) throws IOException {
        super(spec, clock);
        if (!(speed > 0) || Double.isInfinite(speed)) {
            throw new IllegalArgumentException("trace speed must be > 0, got " + speed);
        }
        this.path = path;
        this.speed = speed;
        this.loop = loop;
        this.reader = TraceReader.open(path);
        this.memoryBytes = reader.memoryBytes();
    }

    @Override
    public long memoryBytes() {
        return memoryBytes;
    }

    @Override
    public void fill(GuestMemory memory) {
        checkMemory(memory);
        try {
            if (reader == null) {
                throw new IllegalStateException("fill after start");
            }
            // Pages the image does not list stay as they are: anonymous guest memory starts zeroed.
            reader.readImage((index, page) -> memory.writePage(index, page, 0));
        } catch (IOException e) {
            throw new UncheckedIOException(path + ": " + e.getMessage(), e);
        }
    }

    @Override
    Vcpu[] createVcpus(GuestMemory memory) {
        replayer = new Replayer(this, reader);
        reader = null; // the vCPU owns it now
        return new Vcpu[] {replayer};
    }

    @Override
    void release() {
        Replayer started = replayer;
        replayer = null;
        if (started != null && started.stopped) {
            started.finishPass();
        } // else a vCPU that did not stop in time keeps its reader; close already fails
        if (reader != null) {
            try {
                reader.close();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } finally {
                reader = null;
            }
        }
    }

    /** The replaying vCPU; owns its reader until it stops, then {@link #release} finishes and closes it. */
    private static final class Replayer extends Vcpu {
        private final TraceWorkload workload;
        private TraceReader reader;
    /** The replaying vCPU once started: {@link #release} finishes its pass. */
    private Replayer replayer;
        private TraceEpoch epoch;
        private int nextPage;
        /** Trace time at which the current pass started (a multiple of the duration when looping). */
        private long passStartMicros;
        private long lastEpochMicros;
        /** Set last on this vCPU's thread: from then on the reader is the closing thread's. */
        volatile boolean stopped;

        Replayer(TraceWorkload workload, TraceReader reader) {
            super(workload);
            this.workload = workload;
            this.reader = reader;
        }

        @Override
        boolean step(Target target) throws IOException {
            if (epoch == null && !nextEpoch()) {
                return false;
            }
            long dueNanos = (long) ((passStartMicros + epoch.timeMicros()) * 1000.0 / workload.speed);
            long wait = dueNanos - runningNanos();
            if (wait > 0) {
                sleep(wait);
                return true;
            }
            MemorySegment data = epoch.data();
            DirtyBitmap log = target.log();
            PageGate gate = target.gate();
            for (int count = epoch.count(); nextPage < count; nextPage++) {
                if (owner.pauseRequested) {
                    return true;
                }
                long page = epoch.pageIndex(nextPage);
                gate.awaitPresent(page);
                gate.store(data, TraceEpoch.dataOffset(nextPage), target.memory(),
                        page << GuestMemory.PAGE_SHIFT, GuestMemory.PAGE_SIZE);
                log.mark(page);
                wrote();
            }
            epoch = null;
            return true;
        }

        @Override
        void stopped() {
            stopped = true;
        }

        /**
         * Reads the rest of the current pass, trailer included, unless the replay already failed;
         * a violation becomes the workload's failure. Closes the reader. Called after this vCPU stopped.
         */
        void finishPass() {
            try (TraceReader r = reader) {
                if (workload.failure() == null) {
                    r.finish(); // returns at once when the replay read the whole pass
                }
            } catch (IOException e) {
                if (workload.failure() == null) {
                    workload.fail(e);
                }
            }
        }

        /** Reads the next epoch, starting another pass when looping; false when replay is over. */
        private boolean nextEpoch() throws IOException {
            epoch = reader.nextEpoch();
            if (epoch == null) {
                reader.finish();
                if (!workload.loop || lastEpochMicros == 0) {
                    return false;
                }
                reader.close();
                reader = TraceReader.open(workload.path);
                if (reader.memoryBytes() != workload.memoryBytes) {
                    throw new IOException(workload.path + " changed during replay");
                }
                passStartMicros += lastEpochMicros;
                epoch = reader.nextEpoch(); // skips the image
                if (epoch == null) {
                    return false;
                }
            }
            lastEpochMicros = epoch.timeMicros();
            nextPage = 0;
            return true;
        }
    }
}
