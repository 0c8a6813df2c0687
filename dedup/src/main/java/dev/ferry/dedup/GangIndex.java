package dev.ferry.dedup;

/**
 * The content index the guests of a gang share on the source: where a content was last sent in
 * full by any of them, as a {@link DedupIndex#location} naming the guest. Every sending thread of
 * every guest looks pages up here and records what it sent, so the one {@link DedupIndex} is
 * behind a lock; a sender asks only after its own channel's index missed, once a page.
 */
public final class GangIndex {
    private final DedupIndex index;

    /** A shared index of at most {@code bytes} bytes. */
    public GangIndex(long bytes) {
        this.index = new DedupIndex(bytes);
    }

    /** Where a content of hash {@code hash} was last sent in full by a guest of the gang, or -1. */
    public synchronized long lookup(long hash) {
        return index.lookup(hash);
    }

    /** Whether a guest of the gang sent a content of hash {@code hash} in full; not counted (for estimates). */
    public synchronized boolean holds(long hash) {
        return index.holds(hash);
    }

    /** Records that guest {@link DedupIndex#guestOf} of {@code location} sent a content of hash {@code hash} there in full. */
    public synchronized void put(long hash, long location) {
        index.put(hash, location);
    }

    /** Entries replaced to make room. */
    public synchronized long evictions() {
        return index.evictions();
    }

    /** Bytes of the table as it is now. */
    public synchronized long bytes() {
        return index.bytes();
    }
}
