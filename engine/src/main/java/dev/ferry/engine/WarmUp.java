package dev.ferry.engine;

import dev.ferry.core.Capability;
import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.DirtyLog;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.VmControl;
import dev.ferry.transport.LinkServer;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A small migration of a synthetic guest within this process, over 127.0.0.1, that take every
 * branch of the page path: zero pages, XBZRLE hits, misses, unchanged pages and overflows, LZ4 and
 * zstd on and off and sampled, dense bulk rounds and sparse late ones, stop-and-copy.
 *
 * <p>Why: HotSpot compiles the page loop while the bulk round runs, from a profile in which no
 * delta was ever taken and every bitmap was dense. The first sparse round, usually the
 * stop-and-copy, then throws that code away and runs interpreted until it is compiled again:
 * measured as 15-30 ms more downtime on a 512 MiB guest. After this migration the profile
 * holds every branch, so nothing is thrown away at the switch-over. Then raw passes of a larger
 * guest, every other one with dedup, bring the raw page path, references and Netty's per-frame
 * calls to C2 ({@link #RAW_GUEST_BYTES}).
 */
final class WarmUp {
    private static final long GUEST_BYTES = 8L << 20;
    /**
     * The raw passes' guest. With the first migration alone the page path reached only C1's
     * profiling tier, and C2 compiled it during the next migration's bulk round: 20-25% of both
     * cores on a 1 GiB guest while the page loops ran in the slower tier. Each pass is about 770
     * frames (its zero pages are records, not raw pages), and Netty's per-frame and per-read calls
     * reach C2 only after about 10 000 of them: with eight passes, JFR's {@code jdk.Compilation}
     * still showed 59 C2 compilations (431 ms) of Netty's allocator and read path inside the
     * measured migration of a 1 GiB idle guest ({@code --stages none}, 2 channels, {@code
     * --prealloc on}), with sixteen 11 (105 ms); that migration took 689-793 ms with four passes
     * and 576-718 ms with sixteen (3 runs each). The warm-up costs about 3 s more.
     */
    private static final long RAW_GUEST_BYTES = 128L << 20;
    private static final int RAW_PASSES = 16;
    /**
     * Every other raw pass's destination reads this much at a time, not up to 1 MiB. HotSpot sends
     * a method to C2 by its calls, and Netty's read path ({@code FrameSplitter.channelRead},
     * {@code EpollIoHandler.run}, {@code fireChannelReadComplete}) is called once a read: with
     * 1 MiB reads, sixteen passes left it at C1's tier 3, and C2 compiled it in the first 0.3-1.0 s
     * of the next migration instead. JFR's {@code jdk.Compilation} counted 0.47-0.91 s of C2
     * compiling inside the measured migration of a 1 GiB raw guest (2 channels, {@code --prealloc
     * on}, 2 cores), 0.11 s with these small reads: 64 times the calls for the same bytes.
     */
    private static final int SMALL_READ = 16 << 10;
    private static boolean done;

    private WarmUp() {
    }

    /** Runs the warm-up migrations unless they already ran: their reports, the all-stages one first; or none. */
    static synchronized List<MigrationReport> run() {
        if (done) {
            return List.of();
        }
        List<MigrationReport> reports = new ArrayList<>();
        loadSegmentKinds();
        // POSTCOPY too: the destination then links its userfaultfd calls at the handshake, once
        EnumSet<Capability> all = EnumSet.of(Capability.ZERO_PAGES, Capability.XBZRLE, Capability.LZ4,
                Capability.ZSTD, Capability.DEDUP, Capability.POSTCOPY);
        // compression always, whatever the default: the warm-up is there to put every page through the codecs
        reports.add(migrate(new SyntheticGuest(GUEST_BYTES, true), MigrationParameters.builder()
                .capabilities(all).adaptiveCompression(false).downtimeLimitMillis(1).maxRounds(6)
                .convergence(dev.ferry.core.ConvergencePolicy.FORCE).build(), LinkServer.MAX_READ));
        // the raw page path, which compression always bypasses, until C2 has compiled it; every
        // other pass with dedup, whose references the raw guest's twin pages make
        for (int pass = 0; pass < RAW_PASSES; pass++) {
            boolean odd = pass % 2 == 1;
            EnumSet<Capability> stages = odd ? EnumSet.of(Capability.ZERO_PAGES, Capability.DEDUP)
                    : EnumSet.of(Capability.ZERO_PAGES);
            reports.add(migrate(new SyntheticGuest(RAW_GUEST_BYTES, false),
                    MigrationParameters.builder().capabilities(stages).build(), odd ? SMALL_READ : LinkServer.MAX_READ));
        }
        done = true;
        return reports;
    }

    /**
     * Loads every kind of memory segment the JDK has before anything is compiled. While only
     * native segments exist, HotSpot compiles every page loop against that one class; the first
     * heap segment (a workload's page generator, a test) loaded later then throws all of that code
     * away at once: measured as XBZRLE running at 26-58 us a page instead of 1.6 in the next
     * stop-and-copy, 25-63 ms of downtime where 10 were predicted.
     */
    private static void loadSegmentKinds() {
        MemorySegment.ofArray(new byte[1]);
        MemorySegment.ofArray(new char[1]);
        MemorySegment.ofArray(new short[1]);
        MemorySegment.ofArray(new int[1]);
        MemorySegment.ofArray(new float[1]);
        MemorySegment.ofArray(new long[1]);
        MemorySegment.ofArray(new double[1]);
        try {
            // a mapped file's segment has a class of its own (QEMU's RAM file, a trace), not reachable without a file
            Class.forName("jdk.internal.foreign.MappedMemorySegmentImpl");
        } catch (ClassNotFoundException e) {
            // another JDK's layout: nothing to load
        }
    }

    private static MigrationReport migrate(SyntheticGuest guest, MigrationParameters params, int largestRead) {
        try (SyntheticGuest source = guest; GuestMemory target = GuestMemory.anonymous(guest.memory.byteSize());
             IncomingMigration in = Migration.destination(VmControl.idle()).memory(target).largestRead(largestRead)
                     .start()) {
            MigrationReport report = Migration.source(source.memory, source, source).parameters(params)
                    .connect(in.address()).start().result().get(60, TimeUnit.SECONDS);
            in.result().get(10, TimeUnit.SECONDS);
            if (!report.succeeded()) {
                throw new IllegalStateException("warm-up migration failed: " + report.error());
            }
            return report;
        } catch (ExecutionException | TimeoutException | MigrationException e) {
            throw new IllegalStateException("warm-up migration failed", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while warming up", e);
        }
    }

    /**
     * A guest without a vCPU thread: each sync first "writes" a quarter of its pages in every way
     * the stages treat differently, then reports them, until the switch-over pauses it; or, not
     * dirtying, a guest that never changes: of every four pages a zero one, two random ones and
     * a twin of the one before.
     */
    private static final class SyntheticGuest implements DirtyLog, VmControl, AutoCloseable {
        private static final int TWIN = 5;
        /** The never-changing guest's pages, by page number modulo 4: zero, random, random, twin. */
        private static final int[] RAW_KINDS = {0, 1, 1, TWIN};
        final GuestMemory memory;
        private final DirtyBitmap dirty;
        private final SplittableRandom random = new SplittableRandom(42);
        private final boolean dirtying;
        private boolean paused;
        private int syncs;

        SyntheticGuest(long bytes, boolean dirtying) {
            this.memory = GuestMemory.anonymous(bytes);
            this.dirty = new DirtyBitmap(memory.pageCount());
            this.dirtying = dirtying;
            for (long page = 0; page < memory.pageCount(); page++) {
                write(page, dirtying ? (int) (page % 4) : RAW_KINDS[(int) (page % 4)]);
            }
        }

        @Override
        public long sync(PageBitmap into) {
            if (dirtying && !paused) {
                // the same sparse quarter every round, each page written another way each time: from
                // the second round after the bulk on, every one of them is an XBZRLE hit
                for (long page = 1; page < memory.pageCount(); page += 4) {
                    write(page, (int) ((page / 4 + syncs) % 5));
                    dirty.mark(page);
                }
                syncs++;
            }
            return dirty.sync(into);
        }

        /**
         * Kinds 0-3 write a page zero, random, text-like, or a few bytes off; {@link #TWIN} copies
         * the page before; any other leaves it as it was.
         */
        private void write(long page, int kind) {
            MemorySegment bytes = memory.segment().asSlice(page * GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE);
            switch (kind) {
                case 0 -> bytes.fill((byte) 0);
                case 1 -> {
                    for (long off = 0; off < GuestMemory.PAGE_SIZE; off += 8) {
                        bytes.set(ValueLayout.JAVA_LONG_UNALIGNED, off, random.nextLong());
                    }
                }
                case 2 -> {
                    for (long off = 0; off < GuestMemory.PAGE_SIZE; off++) {
                        bytes.set(ValueLayout.JAVA_BYTE, off, (byte) ('a' + random.nextInt(8)));
                    }
                }
                case 3 -> bytes.set(ValueLayout.JAVA_LONG_UNALIGNED, 8L * random.nextInt(512), random.nextLong());
                case TWIN -> bytes.copyFrom(memory.segment().asSlice((page - 1) * GuestMemory.PAGE_SIZE,
                        GuestMemory.PAGE_SIZE));
                default -> {
                }
            }
        }

        @Override
        public void pause() {
            paused = true;
        }

        @Override
        public void resume() {
            paused = false;
        }

        @Override
        public byte[] saveDeviceState() {
            return new byte[0];
        }

        @Override
        public void loadDeviceState(byte[] state) {
        }

        @Override
        public void close() {
            memory.close();
        }
    }
}
