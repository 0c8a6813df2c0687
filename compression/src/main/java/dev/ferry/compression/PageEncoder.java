package dev.ferry.compression;

import dev.ferry.protocol.PageEncoding;
import dev.ferry.core.Capability;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageDigest;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Set;

/**
 * The source's page stages: turns one page into the smallest payload the negotiated stages
 * produce (see {@link PageEncoding} for the payload formats).
 *
 * <p>Per page: a zero page is {@link PageEncoding#ZERO}. Otherwise, with XBZRLE negotiated, the
 * page is diffed against the cached copy last sent (a page identical to it is an empty
 * {@link PageEncoding#XBZRLE} payload). When compression is on for the page (see
 * {@link #compressOneIn}), each negotiated compressor is tried on the page and on the delta. The
 * smallest candidate wins; ties go to the cheaper one to decode, and anything not smaller than
 * 4096 bytes is sent {@link PageEncoding#RAW}.
 * The cache then holds the page as sent; a zero page is dropped from it instead, since zeros are
 * cheaper to send as such than as a delta.
 *
 * <p>One encoder per sending thread, and the destination must apply a page's payloads in the
 * order this encoder produced them: an XBZRLE delta is only valid against the page this encoder
 * last sent for that index. So a page index must always be encoded by the same encoder (partition
 * indices among threads and connections), never by two.
 *
 * <p>Nothing is allocated per page, provided the caller takes {@code page} from at most four
 * segments it reuses (a new segment, e.g. a fresh slice, costs one ByteBuffer view when
 * compressing).
 */
public final class PageEncoder implements AutoCloseable {
    /** The largest payload {@link #encode} returns: a raw page. */
    public static final int MAX_PAYLOAD = GuestMemory.PAGE_SIZE;

    private static final int PAGE = GuestMemory.PAGE_SIZE;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int SCRATCH = 2 + Math.max(Lz4Codec.maxCompressedLength(PAGE), ZstdCodec.maxCompressedLength(PAGE));

    private final NanoClock clock;
    private final boolean zeroPages;
    private final XbzrleCache cache;
    private final Lz4Codec lz4;
    private final ZstdCodec zstd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment delta;
    private final ByteBuffer deltaBuffer;
    private final MemorySegment pageCopy;
    private final ByteBuffer pageCopyBuffer;
    private final MemorySegment[] trials = new MemorySegment[2];
    private final ByteBuffer[] trialBuffers = new ByteBuffer[2];
    private final SegmentView pageView = new SegmentView();
    /**
     * Pages from one compressed page to the next; never is an interval no page reaches, so that
     * never, sometimes and always all take the same branch in {@link #encode} (a branch the JIT
     * saw go only one way during the bulk round is recompiled when it first goes the other).
     */
    private long compressEvery = 1;
    private long sinceCompressed;
    private int encoding = -1;
    private long contentHash;

    private int bestCode;
    private int bestLength;
    private int bestTrial;

    private final long[] pages = new long[PageEncoding.COUNT];
    private final long[] saved = new long[PageEncoding.COUNT];
    private long payloadBytes;
    private long bytesBeforeCompression;
    private long compressInputBytes;
    private long compressNanos;
    private long triedPages;
    private long triedBeforeBytes;
    private long triedPayloadBytes;
    private boolean xbzrleActive;
    private boolean lastPass;

    /**
     * Loads LZ4's and zstd's native libraries, which takes tens of milliseconds the first time in
     * a process: a one-time cost of the process, paid before a migration's clock starts rather
     * than inside its first compressed chunk.
     */
    public static void loadCodecs() {
        try (Lz4Codec lz4 = new Lz4Codec(); ZstdCodec zstd = new ZstdCodec(1)) {
            // constructing them is the loading
        }
    }

    /**
     * An encoder for the stages in {@code negotiated}, with an XBZRLE cache of
     * {@code xbzrleCacheBytes} and the zstd level of {@code params}; {@code clock} times the
     * compressors (the adaptive choice weighs that time).
     */
    public PageEncoder(Set<Capability> negotiated, MigrationParameters params, long xbzrleCacheBytes, NanoClock clock) {
        this.clock = clock;
        this.zeroPages = negotiated.contains(Capability.ZERO_PAGES);
        this.cache = negotiated.contains(Capability.XBZRLE) ? new XbzrleCache(xbzrleCacheBytes) : null;
        this.lz4 = negotiated.contains(Capability.LZ4) ? new Lz4Codec() : null;
        this.zstd = negotiated.contains(Capability.ZSTD) ? new ZstdCodec(params.zstdLevel()) : null;
        this.delta = arena.allocate(PAGE, 64);
        this.deltaBuffer = delta.asByteBuffer();
        this.pageCopy = arena.allocate(PAGE, 64);
        this.pageCopyBuffer = pageCopy.asByteBuffer();
        for (int t = 0; t < 2; t++) {
            trials[t] = arena.allocate(SCRATCH, 64);
            trialBuffers[t] = trials[t].asByteBuffer();
        }
    }

    /**
     * Encodes page {@code index} whose bytes (a stable private copy) are at
     * {@code page[pageOff..pageOff + 4096)}, writing the payload to {@code dst[dstOff..)}, which
     * must have room for {@link #MAX_PAYLOAD} bytes. The chosen code is then {@link #encoding()},
     * and for a page that is not zero {@link #contentHash()} is its hash, taken before anything
     * was written.
     *
     * <p>The page may already be where its payload goes ({@code page == dst}, {@code pageOff ==
     * dstOff}): a page that crosses raw is then copied once in all, from guest memory to the frame.
     *
     * @return the payload's length (0 for {@link PageEncoding#ZERO} and for an unchanged page)
     */
    public int encode(long index, MemorySegment page, long pageOff, MemorySegment dst, long dstOff) {
        if (zeroPages && ZeroPages.isZero(page, pageOff)) {
            if (cache != null) {
                cache.invalidate(index);
            }
            return done(PageEncoding.ZERO, 0, 0);
        }
        return encodeNonZero(index, page, pageOff, dst, dstOff, PageDigest.contentHash(page, pageOff));
    }

    /**
     * {@link #encode} for a page the caller found not zero and hashed ({@link PageDigest#contentHash})
     * already: the dedup stage ahead of this encoder does both.
     */
    public int encodeNonZero(long index, MemorySegment page, long pageOff, MemorySegment dst, long dstOff,
            long contentHash) {
        this.contentHash = contentHash;
        bestCode = PageEncoding.RAW;
        bestLength = PAGE;
        bestTrial = -1;
        int deltaLength = -1;
        if (cache != null && xbzrleActive) {
            long cached = cache.lookup(index);
            if (cached >= 0) {
                deltaLength = Xbzrle.encode(cache.segment(), cached, page, pageOff, delta, 0, PAGE);
                if (deltaLength == 0) {
                    return done(PageEncoding.XBZRLE, 0, 0);
                }
                if (deltaLength < 0) {
                    cache.overflowed();
                } else if (deltaLength < bestLength) {
                    bestCode = PageEncoding.XBZRLE;
                    bestLength = deltaLength;
                }
            }
        }
        int beforeCompression = bestLength;
        boolean tried = false;
        if ((lz4 != null || zstd != null) && ++sinceCompressed >= compressEvery) {
            sinceCompressed = 0;
            tryCompressors(page, pageOff, deltaLength);
            tried = true;
        }
        // cached before the payload is written: the page may be where the payload goes
        if (cache != null && xbzrleActive) {
            if (lastPass) {
                // a page sent twice in the last pass must not be diffed against what it was before it
                cache.invalidate(index);
            } else {
                cache.insert(index, page, pageOff);
            }
        }
        if (bestTrial >= 0) {
            MemorySegment.copy(trials[bestTrial], 0, dst, dstOff, bestLength);
        } else if (bestCode == PageEncoding.XBZRLE) {
            MemorySegment.copy(delta, 0, dst, dstOff, bestLength);
        } else if (page != dst || pageOff != dstOff) {
            MemorySegment.copy(page, pageOff, dst, dstOff, PAGE);
        }
        if (tried) {
            triedPages++;
            triedBeforeBytes += beforeCompression;
            triedPayloadBytes += bestLength;
        }
        return done(bestCode, bestLength, beforeCompression);
    }

    private void tryCompressors(MemorySegment page, long pageOff, int deltaLength) {
        long start = clock.nanoTime();
        ByteBuffer source;
        int sourceOff;
        if (page.isNative() && page.byteSize() <= Integer.MAX_VALUE) {
            source = pageView.of(page);
            sourceOff = (int) pageOff;
        } else {
            MemorySegment.copy(page, pageOff, pageCopy, 0, PAGE);
            source = pageCopyBuffer;
            sourceOff = 0;
        }
        if (lz4 != null) {
            int t = freeTrial();
            consider(PageEncoding.LZ4, lz4.compress(source, sourceOff, PAGE, trialBuffers[t], 0), t);
            compressInputBytes += PAGE;
            if (deltaLength > 0) {
                t = freeTrial();
                int n = lz4.compress(deltaBuffer, 0, deltaLength, trialBuffers[t], 2);
                trials[t].set(U16, 0, (short) deltaLength);
                consider(PageEncoding.XBZRLE_LZ4, 2 + n, t);
                compressInputBytes += deltaLength;
            }
        }
        if (zstd != null) {
            int t = freeTrial();
            consider(PageEncoding.ZSTD, zstd.compress(source, sourceOff, PAGE, trialBuffers[t], 0), t);
            compressInputBytes += PAGE;
            if (deltaLength > 0) {
                t = freeTrial();
                int n = zstd.compress(deltaBuffer, 0, deltaLength, trialBuffers[t], 2);
                trials[t].set(U16, 0, (short) deltaLength);
                consider(PageEncoding.XBZRLE_ZSTD, 2 + n, t);
                compressInputBytes += deltaLength;
            }
        }
        compressNanos += clock.nanoTime() - start;
    }

    /** The trial buffer not holding the best candidate so far. */
    private int freeTrial() {
        return bestTrial == 0 ? 1 : 0;
    }

    private void consider(int code, int length, int trial) {
        if (length < bestLength) {
            bestCode = code;
            bestLength = length;
            bestTrial = trial;
        }
    }

    /**
     * Encodes page {@code index}, known to be zero (never touched, or read by the caller), as ZERO
     * when zero pages were negotiated; the encoding is then {@link #encoding()}.
     *
     * @return whether it did (false: the page must be read and encoded as any other)
     */
    public boolean encodeKnownZero(long index) {
        if (!zeroPages) {
            return false;
        }
        if (cache != null) {
            cache.invalidate(index);
        }
        done(PageEncoding.ZERO, 0, 0);
        return true;
    }

    /**
     * Page {@code index} crossed as a dedup reference of {@code length} bytes, ahead of this
     * encoder: its XBZRLE copy is dropped (the destination may not install the reference, when
     * the copy it names went stale, so no delta may be taken against either content), and the
     * page is counted as {@link PageEncoding#DEDUP}.
     */
    public void referenced(long index, int length) {
        if (cache != null) {
            cache.invalidate(index);
        }
        done(PageEncoding.DEDUP, length, length);
    }

    /** Whether zero pages are a stage of this encoder. */
    public boolean zeroPages() {
        return zeroPages;
    }

    /**
     * The payload bytes page {@code index} would cross with if it were sent now, from what the
     * zero check and XBZRLE say: 0 for a zero page, the delta's length for a page XBZRLE holds, a
     * page otherwise (compression is left out: its ratio changes chunk by chunk). Sends nothing,
     * changes no cache and counts nothing; the downtime estimate samples the pages still dirty
     * with it, since those are mostly pages sent before, which XBZRLE sends as deltas.
     */
    public int trialLength(long index, MemorySegment page, long pageOff) {
        if (zeroPages && ZeroPages.isZero(page, pageOff)) {
            return 0;
        }
        if (cache != null && xbzrleActive) {
            long cached = cache.peek(index);
            if (cached >= 0) {
                int deltaLength = Xbzrle.encode(cache.segment(), cached, page, pageOff, delta, 0, PAGE);
                if (deltaLength >= 0 && deltaLength < PAGE) {
                    return deltaLength;
                }
            }
        }
        return PAGE;
    }

    /** Whether XBZRLE deltas are being taken (after the bulk round). */
    public boolean xbzrleActive() {
        return cache != null && xbzrleActive;
    }

    private int done(int code, int length, int beforeCompression) {
        encoding = code;
        pages[code]++;
        saved[code] += PAGE - length;
        payloadBytes += length;
        bytesBeforeCompression += beforeCompression;
        return length;
    }

    /**
     * Whether XBZRLE caches and deltas pages from now on. As in QEMU it starts after the bulk
     * round: caching every page of the bulk round would fill the cache with pages that are never
     * sent again and evict the few that are.
     */
    public void xbzrleActive(boolean on) {
        xbzrleActive = on;
    }

    /**
     * Marks the pages encoded from now on as sent for the last time (stop-and-copy): deltas are
     * still taken against the cache, but nothing more is cached (a page used is dropped). No page
     * will be diffed again, so copying each into the cache would only lengthen the downtime.
     */
    public void lastPass() {
        lastPass = true;
    }

    /** The content hash ({@link PageDigest#contentHash}) of the last page {@link #encode} found not zero. */
    public long contentHash() {
        return contentHash;
    }

    /** The {@link PageEncoding} code of the payload the last {@link #encode} produced. */
    public int encoding() {
        return encoding;
    }

    /**
     * On which pages LZ4 and zstd (those negotiated) are tried from now on: every page for 1, none
     * for 0, and one page in {@code n} otherwise (a sample that measures what compressing costs
     * and saves without paying it on every page). The adaptive chooser sets it chunk by chunk.
     * Zero pages and XBZRLE are always used when negotiated.
     */
    public void compressOneIn(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("compressOneIn(" + n + "): 0 (never), 1 (always) or more");
        }
        this.compressEvery = n == 0 ? Long.MAX_VALUE : n;
        this.sinceCompressed = 0;
    }

    /** A snapshot of the figures so far; call from the encoding thread or after it stopped. */
    public StageStats stats() {
        return new StageStats(pages, saved, payloadBytes, bytesBeforeCompression, compressInputBytes, compressNanos,
                triedPages, triedBeforeBytes, triedPayloadBytes, cache == null ? 0 : cache.hits(),
                cache == null ? 0 : cache.misses(), cache == null ? 0 : cache.overflows(),
                cache == null ? 0 : cache.evictions());
    }

    @Override
    public void close() {
        if (cache != null) {
            cache.close();
        }
        if (lz4 != null) {
            lz4.close();
        }
        if (zstd != null) {
            zstd.close();
        }
        arena.close();
    }
}
