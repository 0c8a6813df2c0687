package dev.ferry.dedup;

/**
 * The source's bounded content index: which page a content was last sent to in full, by the
 * page's 64-bit content hash (the one the memory digest is built from, which every page gets
 * anyway: looking a page up costs no hashing of its own). A hit is only a candidate: the sender
 * then takes the page's XXH3-128 ({@link ContentHash}), the reference carries it, and the
 * destination installs the reference only if its copy has that XXH3-128, so a false candidate
 * (two contents with one 64-bit hash) is a stale reference, never a wrong page.
 *
 * <p>Set-associative with two choices: a content may sit in either of two buckets of
 * {@link #WAYS} entries (found from different bits of its hash), each entry two longs (hash,
 * location + 1; 0 is an empty entry), so a lookup touches at most two cache lines. A content
 * goes to the emptier of its two, which lets the table fill to about half before both of a
 * pair are full. That keeps it small, which matters because every page is looked up: on a
 * 1 GiB guest of distinct pages a 64 MiB table (a TLB and a cache miss each time) made the
 * migration 38% slower, a 1 MiB one 4%. The table starts at {@link #INITIAL_BYTES} and doubles
 * when a pair of buckets is full, up to its bound; an entry of old bucket b moves to b or
 * b + the old count, so moving never overflows a bucket. While it doubles, the old table is
 * alive too (half the new one's bytes). Only at its bound does a full pair evict one entry of
 * the first bucket, by turns (a clock, as cheap as it gets; what it evicts is only a missed
 * reference, never a wrong page), and nothing is allocated any more.
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
        int at = find(hash, first(hash));
        if (at < 0) {
            at = find(hash, second(hash));
        }
        if (at < 0) {
            misses++;
            return -1;
        }
        hits++;
        return table[at + 1] - 1;
    }

    /** Whether a content of hash {@code hash} has an entry; not counted (for estimates). */
    public boolean holds(long hash) {
        return find(hash, first(hash)) >= 0 || find(hash, second(hash)) >= 0;
    }

    /** Forgets every entry and count; the table keeps its size. */
    public void clear() {
        java.util.Arrays.fill(table, 0L);
        hits = 0;
        misses = 0;
        evictions = 0;
        entries = 0;
    }

    /** The entry of bucket {@code bucket} that holds {@code hash}, or -1. */
    private int find(long hash, int bucket) {
        for (int at = bucket; at < bucket + WAYS * 2; at += 2) {
            if (table[at + 1] != 0 && table[at] == hash) {
                return at;
            }
        }
        return -1;
    }

    /** The empty entries of bucket {@code bucket}. */
    private int free(int bucket) {
        int free = 0;
        for (int at = bucket; at < bucket + WAYS * 2; at += 2) {
            if (table[at + 1] == 0) {
                free++;
            }
        }
        return free;
    }

    /** The first empty entry of bucket {@code bucket}, or -1. */
    private int empty(int bucket) {
        for (int at = bucket; at < bucket + WAYS * 2; at += 2) {
            if (table[at + 1] == 0) {
                return at;
            }
        }
        return -1;
    }

    /**
     * Records that a content of hash {@code hash} now crosses in full to {@code location}: an
     * entry for the same hash is repointed (the new copy is the one known to be fresh), else an
     * empty entry of the emptier of its two buckets is taken, else the table doubles, or at its
     * bound an entry is evicted.
     */
    public void put(long hash, long location) {
        int first = first(hash);
        int second = second(hash);
        int at = find(hash, first);
        if (at < 0) {
            at = find(hash, second);
        }
        if (at >= 0) {
            table[at + 1] = location + 1;
            return;
        }
        boolean below = bucketMask + 1 < maxBuckets;
        // the emptier of the two buckets: the table then fills to about half before a pair is full
        at = free(second) > free(first) ? empty(second) : empty(first);
        if (at < 0 && below) {
            grow();
            put(hash, location);
            return;
        }
        if (at < 0) {
            at = first + 2 * (victim++ & WAYS - 1);
            evictions++;
        } else {
            entries++;
        }
        table[at] = hash;
        table[at + 1] = location + 1;
    }

    /**
     * Doubles the table. An entry of old bucket b sits there by its first or its second choice,
     * and that choice in the new table is b or b + the old count, so each new bucket takes
     * entries of one old bucket only, and never more than it held.
     */
    private void grow() {
        long[] old = table;
        int oldMask = bucketMask;
        int buckets = (bucketMask + 1) * 2;
        table = new long[buckets * WAYS * 2];
        bucketMask = buckets - 1;
        for (int from = 0; from < old.length; from += WAYS * 2) {
            for (int at = from; at < from + WAYS * 2; at += 2) {
                if (old[at + 1] != 0) {
                    long hash = old[at];
                    int bucket = bucket(hash, oldMask) == from ? first(hash) : second(hash);
                    int to = empty(bucket);
                    table[to] = hash;
                    table[to + 1] = old[at + 1];
                }
            }
        }
    }

    /** The offset of a content's first bucket: the content hash is two CRCs side by side, folded so both pick it. */
    private int first(long hash) {
        return bucket(hash, bucketMask);
    }

    /**
     * The offset of a content's first bucket: the top bits of the hash times an odd constant.
     * Not a fold of the hash's halves: a content hash is a CRC of each half of the page, CRCs are
     * linear, and a fold put every page whose halves are equal (11% of the redis trace's non-zero
     * pages) in one bucket, which made 200 000 such contents evict from a table of 4 M entries.
     */
    private static int bucket(long hash, int mask) {
        return (int) ((hash * 0xC2B2AE3D27D4EB4FL) >>> 38 & mask) * WAYS * 2;
    }

    /**
     * The offset of a content's second bucket: the top bits of the hash times the golden ratio,
     * another constant than the first's, so that contents sharing a first bucket do not share
     * their second.
     */
    private int second(long hash) {
        return (int) ((hash * 0x9E3779B97F4A7C15L) >>> 38 & bucketMask) * WAYS * 2;
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
