package dev.ferry.bench.jmh;

import com.github.luben.zstd.ZstdInputStream;
import dev.ferry.core.Capability;
import dev.ferry.dedup.ContentHash;
import dev.ferry.dedup.DedupIndex;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageDigest;
import dev.ferry.compression.Lz4Codec;
import dev.ferry.compression.MalformedPayloadException;
import dev.ferry.compression.PageEncoder;
import dev.ferry.compression.Xbzrle;
import dev.ferry.compression.ZeroPages;
import dev.ferry.compression.ZstdCodec;
import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
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
 * The page stages, single-threaded, on 4 KiB pages of the guest-redis trace: a window of
 * {@value #PAGES} consecutive guest pages from the image (zero pages included, as they are in
 * guest RAM), and for XBZRLE the window's pages as the trace's epochs rewrote them. One operation
 * is one page, so every score is pages per second; divide by {@link #memoryCopy}'s score for the
 * stage's cost relative to copying the page.
 *
 * <p>Trace directory: system property {@code ferry.traces}, default {@code ../shared/traces}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class StagesBenchmark {
    static final int PAGES = 2048;
    private static final int PAGE = 4096;
    private static final long WINDOW_START = 65536;
    private static final MemorySegment ZEROS = Arena.global().allocate(PAGE, 64);

    private Arena arena;
    private MemorySegment pages;
    private MemorySegment copyTarget;
    private MemorySegment zeroPages;
    private MemorySegment oldPages;
    private MemorySegment newPages;
    private MemorySegment deltas;
    private int[] deltaLengths;
    private MemorySegment patched;
    private int pairs;
    private MemorySegment lz4Blocks;
    private int[] lz4Lengths;
    private MemorySegment zstdFrames;
    private int[] zstdLengths;
    private MemorySegment out;
    private Lz4Codec lz4;
    private ZstdCodec zstd;
    private PageEncoder encoder;
    private final ContentHash contentHash = new ContentHash();
    /** The window's pages' content hashes, the dedup index's keys. */
    private long[] hashes;
    private DedupIndex index;
    private long missSalt = 1;

    @Setup
    public void load() throws IOException {
        arena = Arena.ofShared();
        pages = arena.allocate((long) PAGES * PAGE, PAGE);
        copyTarget = arena.allocate((long) PAGES * PAGE, PAGE);
        zeroPages = arena.allocate((long) PAGES * PAGE, PAGE);
        oldPages = arena.allocate((long) PAGES * PAGE, PAGE);
        newPages = arena.allocate((long) PAGES * PAGE, PAGE);
        patched = arena.allocate((long) PAGES * PAGE, PAGE);
        deltas = arena.allocate((long) PAGES * PAGE, PAGE);
        deltaLengths = new int[PAGES];
        readTrace();
        for (int i = 0; i < pairs; i++) {
            deltaLengths[i] = Xbzrle.encode(oldPages, (long) i * PAGE, newPages, (long) i * PAGE, deltas,
                    (long) i * PAGE, PAGE);
        }
        MemorySegment.copy(oldPages, 0, patched, 0, (long) PAGES * PAGE);
        lz4 = new Lz4Codec();
        zstd = new ZstdCodec(1);
        int bound = ZstdCodec.maxCompressedLength(PAGE);
        lz4Blocks = arena.allocate((long) PAGES * bound);
        zstdFrames = arena.allocate((long) PAGES * bound);
        lz4Lengths = new int[PAGES];
        zstdLengths = new int[PAGES];
        for (int i = 0; i < PAGES; i++) {
            lz4Lengths[i] = lz4.compress(pages, (long) i * PAGE, PAGE, lz4Blocks, (long) i * bound);
            zstdLengths[i] = zstd.compress(pages, (long) i * PAGE, PAGE, zstdFrames, (long) i * bound);
        }
        out = arena.allocate(bound, 64);
        hashes = new long[PAGES];
        for (int i = 0; i < PAGES; i++) {
            hashes[i] = PageDigest.contentHash(pages, (long) i * PAGE);
        }
        index = new DedupIndex(MigrationParameters.defaults().dedupIndexSize());
        encoder = new PageEncoder(EnumSet.of(Capability.ZERO_PAGES, Capability.XBZRLE, Capability.LZ4),
                MigrationParameters.defaults(), MigrationParameters.defaults().xbzrleCacheSize(), NanoClock.SYSTEM);
    }

    /** Fills {@link #pages} with the window and the XBZRLE pairs with its pages' changes over the epochs. */
    private void readTrace() throws IOException {
        Path file = Path.of(System.getProperty("ferry.traces", "../shared/traces"), "guest-redis.mtrace.zst");
        if (!Files.isRegularFile(file)) {
            throw new IOException("trace " + file.toAbsolutePath() + " not found; set -Dferry.traces");
        }
        try (ZstdInputStream zin = new ZstdInputStream(new BufferedInputStream(Files.newInputStream(file), 1 << 16));
             DataInputStream in = new DataInputStream(new BufferedInputStream(zin.setLongMax(27), 1 << 16))) {
            expect(in, "FERRYMT1");
            in.skipNBytes(4 + 4 + 8);
            long epochs = u32(in);
            in.skipNBytes(u32(in));
            expect(in, "IMG0");
            MemorySegment latest = arena.allocate((long) PAGES * PAGE, PAGE);
            for (long i = 0, n = u64(in); i < n; i++) {
                long slot = u64(in) - WINDOW_START;
                if (slot >= 0 && slot < PAGES) {
                    read(in, pages, slot * PAGE);
                } else {
                    in.skipNBytes(PAGE);
                }
            }
            MemorySegment.copy(pages, 0, latest, 0, (long) PAGES * PAGE);
            for (long e = 0; e < epochs && pairs < PAGES; e++) {
                expect(in, "EPC0");
                in.skipNBytes(8);
                for (long i = 0, n = u32(in); i < n; i++) {
                    long slot = u64(in) - WINDOW_START;
                    if (slot >= 0 && slot < PAGES && pairs < PAGES) {
                        MemorySegment.copy(latest, slot * PAGE, oldPages, (long) pairs * PAGE, PAGE);
                        read(in, latest, slot * PAGE);
                        MemorySegment.copy(latest, slot * PAGE, newPages, (long) pairs * PAGE, PAGE);
                        pairs++;
                    } else {
                        in.skipNBytes(PAGE);
                    }
                }
            }
        }
        if (pairs == 0) {
            throw new IOException("no page of the window changed in the trace's epochs");
        }
    }

    private static void expect(DataInputStream in, String tag) throws IOException {
        String got = new String(in.readNBytes(tag.length()), StandardCharsets.US_ASCII);
        if (!got.equals(tag)) {
            throw new IOException("trace: expected " + tag + ", found " + got);
        }
    }

    private static long u32(DataInputStream in) throws IOException {
        return Integer.toUnsignedLong(Integer.reverseBytes(in.readInt()));
    }

    private static long u64(DataInputStream in) throws IOException {
        return Long.reverseBytes(in.readLong());
    }

    private static void read(DataInputStream in, MemorySegment dst, long off) throws IOException {
        byte[] b = in.readNBytes(PAGE);
        dst.asSlice(off, PAGE).copyFrom(MemorySegment.ofArray(b));
    }

    @TearDown
    public void close() {
        lz4.close();
        zstd.close();
        encoder.close();
        arena.close();
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long memoryCopy() {
        for (int i = 0; i < PAGES; i++) {
            MemorySegment.copy(pages, (long) i * PAGE, copyTarget, (long) i * PAGE, PAGE);
        }
        return copyTarget.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0);
    }

    /** The hash a dedup reference carries: XXH3-128 through zero-allocation-hashing, taken only for a candidate. */
    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long dedupHash() {
        long sum = 0;
        for (int i = 0; i < PAGES; i++) {
            contentHash.hash(pages, (long) i * PAGE);
            sum += contentHash.low();
        }
        return sum;
    }

    /**
     * The dedup index's work per page crossing in full, hash given: a lookup, then the insert
     * (the entry repointed at the page, the cost of a bucket walk either way).
     */
    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long dedupLookupInsert() {
        long sum = 0;
        for (int i = 0; i < PAGES; i++) {
            sum += index.lookup(hashes[i]);
            index.put(hashes[i], DedupIndex.location(0, i));
        }
        return sum;
    }

    /**
     * The dedup stage of a page crossing in full on the source, beyond the content hash it gets
     * anyway: a lookup that misses and the insert.
     */
    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long dedupMiss() {
        long sum = 0;
        for (int i = 0; i < PAGES; i++) {
            long key = hashes[i] + missSalt;
            sum += index.lookup(key);
            index.put(key, DedupIndex.location(0, i));
        }
        missSalt += 0x9E3779B97F4A7C15L;
        return sum;
    }

    /** The page hash both sides take of every page ({@link PageDigest#contentHash}: CRC-32C and CRC-32). */
    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long pageHash() {
        long sum = 0;
        for (int i = 0; i < PAGES; i++) {
            sum += PageDigest.contentHash(pages, (long) i * PAGE);
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public int zeroScan() {
        int zero = 0;
        for (int i = 0; i < PAGES; i++) {
            zero += ZeroPages.isZero(pages, (long) i * PAGE) ? 1 : 0;
        }
        return zero;
    }

    /** The alternative to {@link ZeroPages#isZero}: the JDK's vectorized mismatch against a zero page. */
    @Benchmark
    @OperationsPerInvocation(PAGES)
    public int zeroScanMismatch() {
        return mismatchScan(pages);
    }

    /** The worst case, every byte read: {@link #zeroScan} over zero pages. */
    @Benchmark
    @OperationsPerInvocation(PAGES)
    public int zeroScanAllZero() {
        int zero = 0;
        for (int i = 0; i < PAGES; i++) {
            zero += ZeroPages.isZero(zeroPages, (long) i * PAGE) ? 1 : 0;
        }
        return zero;
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public int zeroScanAllZeroMismatch() {
        return mismatchScan(zeroPages);
    }

    private static int mismatchScan(MemorySegment region) {
        int zero = 0;
        for (int i = 0; i < PAGES; i++) {
            long off = (long) i * PAGE;
            zero += MemorySegment.mismatch(region, off, off + PAGE, ZEROS, 0, PAGE) == -1 ? 1 : 0;
        }
        return zero;
    }

    /** Cycles over the window's pages as the epochs rewrote them, against their previous contents. */
    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long xbzrleEncode() {
        long total = 0;
        for (int i = 0; i < PAGES; i++) {
            int p = i % pairs;
            total += Xbzrle.encode(oldPages, (long) p * PAGE, newPages, (long) p * PAGE, out, 0, PAGE);
        }
        return total;
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long xbzrleDecode() throws MalformedPayloadException {
        for (int i = 0; i < PAGES; i++) {
            int p = i % pairs;
            if (deltaLengths[p] >= 0) {
                Xbzrle.decode(deltas, (long) p * PAGE, deltaLengths[p], patched, (long) p * PAGE);
            }
        }
        return patched.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0);
    }

    /**
     * The whole source pipeline as the transport calls it (zero, XBZRLE, LZ4 negotiated,
     * compression on): each rewritten page is sent in turn in its old and its new version, so
     * every encode after the first pass diffs against a cached copy.
     */
    @Benchmark
    @OperationsPerInvocation(2 * PAGES)
    public long pageEncoder() {
        long total = 0;
        for (int i = 0; i < PAGES; i++) {
            int p = i % pairs;
            total += encoder.encode(p, oldPages, (long) p * PAGE, out, 0);
            total += encoder.encode(p, newPages, (long) p * PAGE, out, 0);
        }
        return total;
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long lz4Compress() {
        long total = 0;
        for (int i = 0; i < PAGES; i++) {
            total += lz4.compress(pages, (long) i * PAGE, PAGE, out, 0);
        }
        return total;
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long lz4Decompress() throws MalformedPayloadException {
        int bound = ZstdCodec.maxCompressedLength(PAGE);
        for (int i = 0; i < PAGES; i++) {
            lz4.decompress(lz4Blocks, (long) i * bound, lz4Lengths[i], out, 0, PAGE);
        }
        return out.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0);
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long zstdCompress() {
        long total = 0;
        for (int i = 0; i < PAGES; i++) {
            total += zstd.compress(pages, (long) i * PAGE, PAGE, out, 0);
        }
        return total;
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long zstdDecompress() throws MalformedPayloadException {
        int bound = ZstdCodec.maxCompressedLength(PAGE);
        for (int i = 0; i < PAGES; i++) {
            zstd.decompress(zstdFrames, (long) i * bound, zstdLengths[i], out, 0, PAGE);
        }
        return out.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0);
    }
}
