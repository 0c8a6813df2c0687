package dev.ferry.core;

/**
 * What a side can do, offered by the source in the handshake and accepted by the destination;
 * the migration uses the intersection. How a set crosses the wire is the protocol module's
 * ({@code Wire.mask}).
 */
public enum Capability {
    /** Zero pages cross as indices only. */
    ZERO_PAGES("zero"),
    /** Re-sent pages cross as an XBZRLE delta against the copy last sent. */
    XBZRLE("xbzrle"),
    /** Pages and deltas may be LZ4-compressed. */
    LZ4("lz4"),
    /** Pages and deltas may be zstd-compressed. */
    ZSTD("zstd"),
    /** The destination may resume before all pages arrived and request the ones it lacks. */
    POSTCOPY("postcopy"),
    /** A page whose content the destination already holds crosses as a reference to that copy. */
    DEDUP("dedup");

    private final String wireName;

    Capability(String wireName) {
        this.wireName = wireName;
    }

    /** The name used on the command line and in reports. */
    public String wireName() {
        return wireName;
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
