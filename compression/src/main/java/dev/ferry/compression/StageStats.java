package dev.ferry.compression;

import dev.ferry.protocol.PageEncoding;
import dev.ferry.core.GuestMemory;

/**
 * What a {@link PageEncoder} did: pages and bytes saved per encoding code, the XBZRLE cache's
 * counters, and the compressors' cost. An immutable snapshot; {@link #minus} of two snapshots
 * gives one round's figures.
 *
 * <p>Bytes saved for a code are {@code 4096 - payload length} summed over the pages sent with that
 * code. {@link #bytesBeforeCompression} is what the payloads would have totalled had LZ4 and zstd
 * been off (each page's best zero, XBZRLE or raw size); with {@link #payloadBytes} and
 * {@link #compressNanos} it is what {@link CompressionChooser} needs.
 */
public final class StageStats {
    private final long[] pages;
    private final long[] saved;
    private final long payloadBytes;
    private final long bytesBeforeCompression;
    private final long compressInputBytes;
    private final long compressNanos;
    private final long triedPages;
    private final long triedBeforeBytes;
    private final long triedPayloadBytes;
    private final long xbzrleHits;
    private final long xbzrleMisses;
    private final long xbzrleOverflows;
    private final long xbzrleEvictions;

    StageStats(long[] pages, long[] saved, long payloadBytes, long bytesBeforeCompression, long compressInputBytes,
               long compressNanos, long triedPages, long triedBeforeBytes, long triedPayloadBytes, long xbzrleHits, long xbzrleMisses,
               long xbzrleOverflows, long xbzrleEvictions) {
        this.pages = pages.clone();
        this.saved = saved.clone();
        this.payloadBytes = payloadBytes;
        this.bytesBeforeCompression = bytesBeforeCompression;
        this.compressInputBytes = compressInputBytes;
        this.compressNanos = compressNanos;
        this.triedPages = triedPages;
        this.triedBeforeBytes = triedBeforeBytes;
        this.triedPayloadBytes = triedPayloadBytes;
        this.xbzrleHits = xbzrleHits;
        this.xbzrleMisses = xbzrleMisses;
        this.xbzrleOverflows = xbzrleOverflows;
        this.xbzrleEvictions = xbzrleEvictions;
    }

    /** Figures of all zeros. */
    public static StageStats empty() {
        return new StageStats(new long[PageEncoding.COUNT], new long[PageEncoding.COUNT], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }

    /** Pages sent as {@code code} (a {@link PageEncoding} code). */
    public long pagesOf(int code) {
        return pages[code];
    }

    /** Bytes {@code code} saved against raw pages: 4096 minus the payload length, summed. */
    public long bytesSavedOf(int code) {
        return saved[code];
    }

    /** Pages encoded, all codes. */
    public long pages() {
        long n = 0;
        for (long p : pages) {
            n += p;
        }
        return n;
    }

    /** Bytes the raw pages would have taken: pages times 4096. */
    public long rawBytes() {
        return pages() * GuestMemory.PAGE_SIZE;
    }

    /** Payload bytes produced, all codes. */
    public long payloadBytes() {
        return payloadBytes;
    }

    /** Payload bytes had LZ4 and zstd not been tried. */
    public long bytesBeforeCompression() {
        return bytesBeforeCompression;
    }

    /** Bytes given to LZ4 and zstd (every attempt, kept or not). */
    public long compressInputBytes() {
        return compressInputBytes;
    }

    /** Time spent in LZ4 and zstd, kept or not. */
    public long compressNanos() {
        return compressNanos;
    }

    /** Pages LZ4/zstd were tried on: all non-zero pages when compressing, a sample when probing. */
    public long triedPages() {
        return triedPages;
    }

    /**
     * Over the pages LZ4/zstd were tried on (all pages when compressing, a sample when probing):
     * their payload bytes had the compressors not been tried.
     */
    public long triedBeforeBytes() {
        return triedBeforeBytes;
    }

    /** Over the same pages: their payload bytes as sent. */
    public long triedPayloadBytes() {
        return triedPayloadBytes;
    }

    public long xbzrleHits() {
        return xbzrleHits;
    }

    public long xbzrleMisses() {
        return xbzrleMisses;
    }

    /** Deltas that exceeded their budget, so the page went another way. */
    public long xbzrleOverflows() {
        return xbzrleOverflows;
    }

    public long xbzrleEvictions() {
        return xbzrleEvictions;
    }

    /** These figures less {@code earlier}'s: what happened in between. */
    public StageStats minus(StageStats earlier) {
        return combine(earlier, -1);
    }

    /** These figures and {@code other}'s together: two channels' encoders as one. */
    public StageStats plus(StageStats other) {
        return combine(other, 1);
    }

    private StageStats combine(StageStats o, int sign) {
        long[] p = new long[PageEncoding.COUNT];
        long[] s = new long[PageEncoding.COUNT];
        for (int c = 0; c < PageEncoding.COUNT; c++) {
            p[c] = pages[c] + sign * o.pages[c];
            s[c] = saved[c] + sign * o.saved[c];
        }
        return new StageStats(p, s, payloadBytes + sign * o.payloadBytes,
                bytesBeforeCompression + sign * o.bytesBeforeCompression,
                compressInputBytes + sign * o.compressInputBytes, compressNanos + sign * o.compressNanos,
                triedPages + sign * o.triedPages, triedBeforeBytes + sign * o.triedBeforeBytes,
                triedPayloadBytes + sign * o.triedPayloadBytes, xbzrleHits + sign * o.xbzrleHits,
                xbzrleMisses + sign * o.xbzrleMisses, xbzrleOverflows + sign * o.xbzrleOverflows,
                xbzrleEvictions + sign * o.xbzrleEvictions);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("StageStats[");
        for (int c = 0; c < PageEncoding.COUNT; c++) {
            sb.append(PageEncoding.name(c)).append('=').append(pages[c]).append(" saved ").append(saved[c]).append(", ");
        }
        return sb.append("payload=").append(payloadBytes).append(", beforeCompression=").append(bytesBeforeCompression)
                .append(", compressNanos=").append(compressNanos).append(", xbzrle hits=").append(xbzrleHits)
                .append(" misses=").append(xbzrleMisses).append(" overflows=").append(xbzrleOverflows)
                .append(" evictions=").append(xbzrleEvictions).append(']').toString();
    }
}
