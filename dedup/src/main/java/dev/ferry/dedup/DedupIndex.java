package dev.ferry.dedup;

/**
 * The source's bounded content index: which page a content was last sent to in full, by the
 * page's 64-bit content hash (the one the memory digest is built from, which every page gets
 * anyway: looking a page up costs no hashing of its own). A hit is only a candidate: the sender
 * then takes the page's XXH3-128 ({@link ContentHash}), the reference carries it, and the
 * destination installs the reference only if its copy has that XXH3-128, so a false candidate
 * (two contents with one 64-bit hash) is a stale reference, never a wrong page.
 *
 * <p>Set-associative, {@link #WAYS} entries a bucket, each entry two longs (hash, location + 1;
 * 0 is an empty entry), so a lookup touches one cache line. The table starts at
 * {@link #INITIAL_BYTES} and doubles when a bucket is full, up to its bound: a 64 MiB table costs
 * a 1 GiB guest's setup about 12 ms of zeroing and first touches, for a guest that may have few
 * contents to index. Doubling splits each bucket in two, so moving the entries never overflows
 * one; while it doubles, the old table is alive too (half the new one's bytes). At its bound a
 * full bucket evicts one entry by turns (a clock, as cheap as it gets; what it evicts is only a
 * missed reference, never a wrong page), and nothing is allocated any more.
 *
 * <p>An entry says where a content was sent, not that it is still there: the page may have been
 * sent again since with other content. The destination checks every reference against the copy
 * it reads from (docs/protocol.md, Dedup references), so an entry may be stale, never wrong.
 *
 * <p>One index per sending thread: it has no locks.
 */
public final class DedupIndex {
    /** Entries a bucket: four of 16 bytes, one cache line. */
    public static final int WAYS = 4;
    /** Bytes one entry takes. */
    public static final int ENTRY_BYTES = 2 * Long.BYTES;
    /** Bytes the table starts with (or its bound, when smaller). */
    public static final long INITIAL_BYTES = 1L << 20;
    private static final int PAGE_BITS = 48;

    private final int maxBuckets;
    private long[] table;
    private int bucketMask;
    private int victim;
    private long hits;
    private long misses;
    private long evictions;
    private long entries;

    /** An index of at most {@code bytes} bytes (at least one bucket), rounded down to a power of two of buckets. */
    public DedupIndex(long bytes) {
        this.maxBuckets = buckets(bytes);
        int buckets = Math.min(maxBuckets, buckets(INITIAL_BYTES));
        this.table = new long[buckets * WAYS * 2];
        this.bucketMask = buckets - 1;
    }

    private static int buckets(long bytes) {
        long buckets = Math.max(1, bytes / (ENTRY_BYTES * WAYS));
        return (int) Long.highestOneBit(Math.min(buckets, 1L << 26));
    }

    /** The location of page {@code page} of guest {@code guest} of the session. */
    public static long location(int guest, long page) {
        return (long) guest << PAGE_BITS | page;
    }

    /** The guest of a {@link #location}. */
    public static int guestOf(long location) {
        return (int) (location >>> PAGE_BITS);
    }

    /** The page of a {@link #location}. */
    public static long pageOf(long location) {
        return location & (1L << PAGE_BITS) - 1;
    }

    /** Where a content of hash {@code hash} was last sent in full, or -1; counted as a hit or a miss. */
    public long lookup(long hash) {
        int at = bucket(hash);
        for (int way = 0; way < WAYS; way++, at += 2) {
            if (table[at + 1] != 0 && table[at] == hash) {
                hits++;
                return table[at + 1] - 1;
            }
        }
        misses++;
        return -1;
    }

    /**
     * Records that a content of hash {@code hash} now crosses in full to {@code location}: an
     * entry for the same hash is repointed (the new copy is the one known to be fresh), else an
     * empty entry of its bucket is taken, else one is evicted.
     */
    public void put(long hash, long location) {
        int first = bucket(hash);
        int empty = -1;
        int at = first;
        for (int way = 0; way < WAYS; way++, at += 2) {
            if (table[at + 1] == 0) {
                if (empty < 0) {
                    empty = at;
                }
            } else if (table[at] == hash) {
                table[at + 1] = location + 1;
                return;
            }
        }
        if (empty < 0 && bucketMask + 1 < maxBuckets) {
            grow();
            put(hash, location);
            return;
        }
        if (empty < 0) {
            empty = first + 2 * (victim++ & WAYS - 1);
            evictions++;
        } else {
            entries++;
        }
        table[empty] = hash;
        table[empty + 1] = location + 1;
    }

    /** Doubles the table: the entries of bucket b go to b or b + the old count, in their order. */
    private void grow() {
        long[] old = table;
        int buckets = (bucketMask + 1) * 2;
        table = new long[buckets * WAYS * 2];
        bucketMask = buckets - 1;
        for (int from = 0; from < old.length; from += WAYS * 2) {
            // bucket b is at the same offset in both tables, b + the old count an old table further
            int low = from;
            int high = from + old.length;
            for (int at = from; at < from + WAYS * 2; at += 2) {
                if (old[at + 1] != 0) {
                    int to = bucket(old[at]) == from ? low : high;
                    table[to] = old[at];
                    table[to + 1] = old[at + 1];
                    if (to == low) {
                        low += 2;
                    } else {
                        high += 2;
                    }
                }
            }
        }
    }

    private int bucket(long hash) {
        // the content hash is two CRCs side by side: fold them so both pick the bucket
        return (int) ((hash ^ hash >>> 32) & bucketMask) * WAYS * 2;
    }

    /** Lookups that found an entry (candidates, not all of them references). */
    public long hits() {
        return hits;
    }

    /** Lookups that found none. */
    public long misses() {
        return misses;
    }

    /** Entries replaced to make room. */
    public long evictions() {
        return evictions;
    }

    /** Entries in use. */
    public long entries() {
        return entries;
    }

    /** Entries the index holds at most, once grown to its bound. */
    public long capacity() {
        return (long) maxBuckets * WAYS;
    }

    /** Bytes of the table as it is now. */
    public long bytes() {
        return (long) table.length * Long.BYTES;
    }
}
