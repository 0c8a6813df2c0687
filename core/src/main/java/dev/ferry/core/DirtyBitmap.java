package dev.ferry.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Ferry's own {@link DirtyLog}: one bit per page in 64-bit words that any number of writer
 * threads mark concurrently.
 *
 * <p>{@link #mark} is an atomic OR (a full fence on x86), so it can never be reordered before
 * the data store that precedes it; {@link #sync} swaps each word with zero, also atomically, and
 * only then does the migration read the page. Either the mark lands before the swap (the page
 * is taken now, and its bytes are visible) or after it (the page stays dirty for the next sync).
 */
public final class DirtyBitmap implements DirtyLog {
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

    private final long[] words;
    private final long pageCount;

    /** A bitmap for {@code pageCount} pages, all clean. */
    public DirtyBitmap(long pageCount) {
        if (pageCount <= 0 || pageCount > (long) Integer.MAX_VALUE * 64) {
            throw new IllegalArgumentException("page count out of range: " + pageCount);
        }
        this.pageCount = pageCount;
        this.words = new long[(int) ((pageCount + 63) >>> 6)];
    }

    /** Pages covered. */
    public long pageCount() {
        return pageCount;
    }

    /** Records that page {@code page} was written; call after the write's bytes are stored. */
    public void mark(long page) {
        if (page < 0 || page >= pageCount) {
            throw new IndexOutOfBoundsException("page " + page + " of " + pageCount);
        }
        long bit = 1L << page;
        int word = (int) (page >>> 6);
        // A plain read first keeps hot pages from bouncing the cache line on every write; the
        // atomic OR still runs whenever the bit is clear, which is what orders it after the data.
        if (((long) WORDS.getOpaque(words, word) & bit) == 0) {
            WORDS.getAndBitwiseOr(words, word, bit);
        } else {
            VarHandle.fullFence();
            if (((long) WORDS.getVolatile(words, word) & bit) == 0) {
                WORDS.getAndBitwiseOr(words, word, bit);
            }
        }
    }

    /** Marks every page dirty, as the start of dirty logging does for the bulk round. */
    public void markAll() {
        for (int w = 0; w < words.length; w++) {
            WORDS.getAndBitwiseOr(words, w, PageBitmap.wordMask(w, pageCount));
        }
    }

    @Override
    public long sync(PageBitmap into) {
        if (into.pageCount() != pageCount) {
            throw new IllegalArgumentException("bitmap of " + into.pageCount() + " pages, log of " + pageCount);
        }
        long added = 0;
        for (int w = 0; w < words.length; w++) {
            if ((long) WORDS.getOpaque(words, w) != 0) {
                long taken = (long) WORDS.getAndSet(words, w, 0L);
                added += into.orWord(w, taken);
            }
        }
        return added;
    }
}
