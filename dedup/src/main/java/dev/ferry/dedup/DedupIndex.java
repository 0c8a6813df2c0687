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
 * 0 is an empty entry), so a lookup touches one cache line and nothing is allocated after
 * construction. A full bucket evicts one entry by turns (a clock, as cheap as it gets; what it
 * evicts is only a missed reference, never a wrong page).
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
    private static final int PAGE_BITS = 48;

    private final long[] table;
    private final int bucketMask;
    private int victim;
    private long hits;
    private long misses;
    private long evictions;
    private long entries;

    /** An index of at most {@code bytes} bytes (at least one bucket), rounded down to a power of two of buckets. */
    public DedupIndex(long bytes) {
        long buckets = Math.max(1, bytes / (ENTRY_BYTES * WAYS));
        buckets = Long.highestOneBit(Math.min(buckets, 1L << 26));
        this.table = new long[(int) (buckets * WAYS * 2)];
        this.bucketMask = (int) buckets - 1;
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
        if (empty < 0) {
            empty = first + 2 * (victim++ & WAYS - 1);
            evictions++;
        } else {
            entries++;
        }
        table[empty] = hash;
        table[empty + 1] = location + 1;
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

    /** Entries the index holds at most. */
    public long capacity() {
        return table.length / 2;
    }

    /** Bytes of the table. */
    public long bytes() {
        return (long) table.length * Long.BYTES;
    }
}
