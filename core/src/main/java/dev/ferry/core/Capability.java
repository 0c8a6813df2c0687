package dev.ferry.core;

import java.util.EnumSet;
import java.util.Set;

/**
 * What a side can do, offered by the source in the handshake and accepted by the destination;
 * the migration uses the intersection. The bit values are part of the wire protocol.
 */
public enum Capability {
    /** Zero pages cross as indices only. */
    ZERO_PAGES(1, "zero"),
    /** Re-sent pages cross as an XBZRLE delta against the copy last sent. */
    XBZRLE(1 << 1, "xbzrle"),
    /** Pages and deltas may be LZ4-compressed. */
    LZ4(1 << 2, "lz4"),
    /** Pages and deltas may be zstd-compressed. */
    ZSTD(1 << 3, "zstd"),
    /** Pages the destination already holds (from any guest of the session) cross as references. */
    DEDUP(1 << 4, "dedup"),
    /** The destination may resume before all pages arrived and request the ones it lacks. */
    POSTCOPY(1 << 5, "postcopy");

    private final int bit;
    private final String wireName;

    Capability(int bit, String wireName) {
        this.bit = bit;
        this.wireName = wireName;
    }

    /** The bit in the handshake's capability mask. */
    public int bit() {
        return bit;
    }

    /** The name used on the command line and in reports. */
    public String wireName() {
        return wireName;
    }

    /** The mask of a set of capabilities. */
    public static int mask(Set<Capability> capabilities) {
        int mask = 0;
        for (Capability c : capabilities) {
            mask |= c.bit;
        }
        return mask;
    }

    /** The capabilities whose bits are set in {@code mask}; unknown bits are ignored. */
    public static EnumSet<Capability> fromMask(int mask) {
        EnumSet<Capability> set = EnumSet.noneOf(Capability.class);
        for (Capability c : values()) {
            if ((mask & c.bit) != 0) {
                set.add(c);
            }
        }
        return set;
    }

    /** The capability named {@code name} ({@code zero}, {@code xbzrle}, ...). */
    public static Capability byName(String name) {
        for (Capability c : values()) {
            if (c.wireName.equals(name)) {
                return c;
            }
        }
        throw new IllegalArgumentException("unknown capability '" + name + "'");
    }
}
