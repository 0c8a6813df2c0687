package dev.ferry.engine;

import dev.ferry.core.Configuration;
import dev.ferry.dedup.GangIndex;
import dev.ferry.stream.HeldGuest;
import dev.ferry.transport.BandwidthLimiter;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Guests that migrate together, as a host is evacuated (gang migration; QEMU has none). Each
 * member is still a migration of its own, with its connections, rounds, downtime limit,
 * hand-over (each when it converges) and report; what they share is, on the source, one
 * {@code max-bandwidth} and, with dedup, one content index, so a page whose contents another
 * member already sent crosses as a reference to that member's copy; on the destination, the
 * members' memories, which such a reference reads from (and checks, since the members'
 * connections are in no order with each other: a copy not there yet, or changed, is a stale
 * reference and the page crosses in full).
 *
 * <p>Both sides number the members alike, from 1, as a manager gives both sides the migration
 * ids: {@code SourceBuilder.gang(gang, 2)} on one host migrates into
 * {@code DestinationBuilder.gang(gang, 2)} on the other.
 */
public final class Gang {
    /** The most members a gang has: a reference names its guest in 16 bits. */
    public static final int MAX_MEMBERS = 0xFFFF;

    private final BandwidthLimiter limiter;
    /** Bytes of the shared content index, 0 for none; it is made when a member's dedup first asks. */
    private final long indexBytes;
    /** Guarded by this: a destination, or a gang without dedup, never holds one. */
    private GangIndex index;
    private final Map<Integer, HeldGuest> members = new ConcurrentHashMap<>();

    private Gang(long maxBandwidth, long indexBytes) {
        this.limiter = new BandwidthLimiter(Configuration.MAX_BANDWIDTH.check(maxBandwidth));
        this.indexBytes = indexBytes;
    }

    /**
     * A gang whose members share {@code maxBandwidth} bytes a second (0: unlimited) and a content
     * index of {@code dedupIndexBytes}, made when a member's dedup first needs it (the
     * destination's side uses neither).
     */
    public static Gang create(long maxBandwidth, long dedupIndexBytes) {
        return new Gang(maxBandwidth, Configuration.DEDUP_INDEX_SIZE.check(dedupIndexBytes));
    }

    /** A gang with the default {@code max-bandwidth} and {@code dedup-index-size}. */
    public static Gang create() {
        return create(Configuration.MAX_BANDWIDTH.value(), Configuration.DEDUP_INDEX_SIZE.value());
    }

    /**
     * A gang whose members share {@code maxBandwidth} but no content index: with dedup, each
     * refers only to its own pages, as if it migrated alone (what the shared index saves is
     * measured against this).
     */
    public static Gang withinGuests(long maxBandwidth) {
        return new Gang(maxBandwidth, 0);
    }

    /** Entries the shared content index replaced to make room so far; 0 without one. */
    public synchronized long indexEvictions() {
        return index == null ? 0 : index.evictions();
    }

    /** Bytes of the shared content index; 0 while no member's dedup made one. */
    public synchronized long indexBytes() {
        return index == null ? 0 : index.bytes();
    }

    static int checkMember(int member) {
        if (member < 1 || member > MAX_MEMBERS) {
            throw new IllegalArgumentException("a gang member's number is 1.." + MAX_MEMBERS + ", got " + member);
        }
        return member;
    }

    BandwidthLimiter limiter() {
        return limiter;
    }

    /** The shared content index, made on first use, or null when the members refer only to their own pages. */
    synchronized GangIndex index() {
        if (index == null && indexBytes > 0) {
            index = new GangIndex(indexBytes);
        }
        return index;
    }

    /** Member {@code member} on this destination, from its handshake on. */
    void hold(int member, HeldGuest guest) {
        HeldGuest before = members.putIfAbsent(member, guest);
        if (before != null && before.memory() != guest.memory()) {
            throw new IllegalStateException("gang member " + member + " already has its memory here");
        }
    }

    /** Member {@code member} here, or null: where a reference to that guest reads from. */
    HeldGuest member(int member) {
        return members.get(member);
    }
}
