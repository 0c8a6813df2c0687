package dev.ferry.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A set of pages that several threads take pages from, each page by exactly one of them: the
 * pages post-copy still has to send, taken by the background push of every channel and by the
 * thread that answers page requests. {@link #claim} is an atomic test-and-clear.
 */
public final class ClaimablePages {
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

    private final long[] words;
    private final long pageCount;
    private final AtomicLong remaining = new AtomicLong();

    /** The pages of {@code pages}, as a set to claim from. */
    public ClaimablePages(PageBitmap pages) {
        this.pageCount = pages.pageCount();
        this.words = new long[(int) ((pageCount + 63) >>> 6)];
        replaceWith(pages);
    }

    /** Makes the set exactly {@code pages} (no claim may run meanwhile). */
    public void replaceWith(PageBitmap pages) {
        java.util.Arrays.fill(words, 0L);
        long count = 0;
        for (long p = pages.nextSetBit(0); p >= 0; p = pages.nextSetBit(p + 1)) {
            words[(int) (p >>> 6)] |= 1L << p;
            count++;
        }
        remaining.set(count);
    }

    /** Pages covered. */
    public long pageCount() {
        return pageCount;
    }

    /** Takes {@code page} out of the set; true for the one caller that took it. */
    public boolean claim(long page) {
        long bit = 1L << page;
        long before = (long) WORDS.getAndBitwiseAnd(words, (int) (page >>> 6), ~bit);
        if ((before & bit) == 0) {
            return false;
        }
        remaining.decrementAndGet();
        return true;
    }

    /** Puts {@code page} into the set, from any thread; true when it was not in it. */
    public boolean add(long page) {
        long bit = 1L << page;
        long before = (long) WORDS.getAndBitwiseOr(words, (int) (page >>> 6), bit);
        if ((before & bit) != 0) {
            return false;
        }
        remaining.incrementAndGet();
        return true;
    }

    /** Whether {@code page} is still in the set. */
    public boolean contains(long page) {
        return ((long) WORDS.getVolatile(words, (int) (page >>> 6)) & (1L << page)) != 0;
    }

    /** Pages not yet claimed. */
    public long remaining() {
        return remaining.get();
    }

    /** The first page at or after {@code from} still in the set, or -1. */
    public long next(long from) {
        if (from >= pageCount) {
            return -1;
        }
        int w = (int) (from >>> 6);
        long word = (long) WORDS.getVolatile(words, w) & (-1L << from);
        while (true) {
            if (word != 0) {
                return ((long) w << 6) + Long.numberOfTrailingZeros(word);
            }
            if (++w == words.length) {
                return -1;
            }
            word = (long) WORDS.getVolatile(words, w);
        }
    }

    /** The pages still in the set, as a bitmap. */
    public PageBitmap snapshot() {
        PageBitmap out = new PageBitmap(pageCount);
        for (long p = next(0); p >= 0; p = next(p + 1)) {
            out.set(p);
        }
        return out;
    }
}
