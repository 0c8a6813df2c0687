package dev.ferry.core;

/**
 * A set of page indices owned by one thread: the pages a round will send, the pages the
 * destination holds. Backed by a {@code long[]}; iteration allocates nothing.
 */
public final class PageBitmap {
    /** Pages of one stripe: 2 MiB, whole 64-page words (see {@link #takeStripe}). */
    public static final int STRIPE_PAGES = 512;
    private final long[] words;
    private final long pageCount;
    private long cardinality;

    /** An empty set over pages {@code 0 .. pageCount-1}. */
    public PageBitmap(long pageCount) {
        if (pageCount <= 0 || pageCount > (long) Integer.MAX_VALUE * 64) {
            throw new IllegalArgumentException("page count out of range: " + pageCount);
        }
        this.pageCount = pageCount;
        this.words = new long[(int) ((pageCount + 63) >>> 6)];
    }

    static long wordMask(int word, long pageCount) {
        long last = pageCount - ((long) word << 6);
        return last >= 64 ? -1L : (1L << last) - 1;
    }

    /** Pages covered. */
    public long pageCount() {
        return pageCount;
    }

    /** Pages in the set. */
    public long cardinality() {
        return cardinality;
    }

    /** Whether the set is empty. */
    public boolean isEmpty() {
        return cardinality == 0;
    }

    /** Whether {@code page} is in the set. */
    public boolean get(long page) {
        return (words[(int) (page >>> 6)] & (1L << page)) != 0;
    }

    /** Adds {@code page}; returns whether it was absent. */
    public boolean set(long page) {
        if (page < 0 || page >= pageCount) {
            throw new IndexOutOfBoundsException("page " + page + " of " + pageCount);
        }
        int w = (int) (page >>> 6);
        long bit = 1L << page;
        if ((words[w] & bit) != 0) {
            return false;
        }
        words[w] |= bit;
        cardinality++;
        return true;
    }

    /** Removes {@code page}; returns whether it was present. */
    public boolean clear(long page) {
        int w = (int) (page >>> 6);
        long bit = 1L << page;
        if ((words[w] & bit) == 0) {
            return false;
        }
        words[w] &= ~bit;
        cardinality--;
        return true;
    }

    /** Adds every page. */
    public void setAll() {
        for (int w = 0; w < words.length; w++) {
            words[w] = wordMask(w, pageCount);
        }
        cardinality = pageCount;
    }

    /** Removes every page. */
    public void clearAll() {
        java.util.Arrays.fill(words, 0L);
        cardinality = 0;
    }

    /** ORs {@code bits} into word {@code word}; returns how many pages were added. */
    long orWord(int word, long bits) {
        long added = Long.bitCount(bits & ~words[word]);
        words[word] |= bits;
        cardinality += added;
        return added;
    }

    /** Adds every page of {@code other}. */
    public void or(PageBitmap other) {
        checkSame(other);
        for (int w = 0; w < words.length; w++) {
            orWord(w, other.words[w]);
        }
    }

    /** Removes every page of {@code other}. */
    public void andNot(PageBitmap other) {
        checkSame(other);
        for (int w = 0; w < words.length; w++) {
            long removed = words[w] & other.words[w];
            cardinality -= Long.bitCount(removed);
            words[w] &= ~removed;
        }
    }

    /**
     * Moves into this set the pages of {@code from} that lie in stripe {@code stripe} of
     * {@code stripes}, removing them from {@code from}: stripes are runs of
     * {@link #STRIPE_PAGES} pages dealt round-robin, whole words, so two stripes never share a word.
     */
    public void takeStripe(PageBitmap from, int stripe, int stripes) {
        checkSame(from);
        int wordsPerStripe = STRIPE_PAGES >>> 6;
        for (int start = stripe * wordsPerStripe; start < words.length; start += stripes * wordsPerStripe) {
            for (int w = start, end = Math.min(start + wordsPerStripe, words.length); w < end; w++) {
                long bits = from.words[w];
                if (bits != 0) {
                    from.cardinality -= Long.bitCount(bits);
                    from.words[w] = 0;
                    orWord(w, bits);
                }
            }
        }
    }

    /** The stripe of {@code stripes} that {@code page} lies in: see {@link #takeStripe}. */
    public static int stripeOf(long page, int stripes) {
        return (int) ((page / STRIPE_PAGES) % stripes);
    }

    private void checkSame(PageBitmap other) {
        if (other.pageCount != pageCount) {
            throw new IllegalArgumentException("bitmaps of " + pageCount + " and " + other.pageCount + " pages");
        }
    }

    /** The first page at or after {@code from} in the set, or -1. */
    public long nextSetBit(long from) {
        return nextSetBit(from, pageCount);
    }

    /**
     * The first page in {@code [from, to)} in the set, or -1: a scan of the words of that range
     * only, however far the next page of the set lies beyond it.
     */
    public long nextSetBit(long from, long to) {
        long end = Math.min(to, pageCount);
        if (from >= end) {
            return -1;
        }
        int w = (int) (from >>> 6);
        int last = (int) ((end - 1) >>> 6);
        long word = words[w] & (-1L << from);
        while (true) {
            if (word != 0) {
                long page = ((long) w << 6) + Long.numberOfTrailingZeros(word);
                return page < end ? page : -1;
            }
            if (++w > last) {
                return -1;
            }
            word = words[w];
        }
    }

    /** The first page at or after {@code from} not in the set, or -1. */
    public long nextClearBit(long from) {
        if (from >= pageCount) {
            return -1;
        }
        int w = (int) (from >>> 6);
        long word = ~words[w] & (-1L << from);
        while (true) {
            if (word != 0) {
                long page = ((long) w << 6) + Long.numberOfTrailingZeros(word);
                return page < pageCount ? page : -1;
            }
            if (++w == words.length) {
                return -1;
            }
            word = ~words[w];
        }
    }
}
