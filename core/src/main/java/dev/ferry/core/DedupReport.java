package dev.ferry.core;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * What the dedup stage did in one migration: {@code hits} pages crossed as references
 * ({@code acrossGuests} of them to a page of another guest of its gang),
 * {@code misses} looked their content up and crossed in full, {@code evictions} index entries
 * were replaced for room, {@code stale} references named a copy that no longer held the content
 * (the destination asked for those pages and they crossed again), out of an index grown to
 * {@code indexBytes}.
 *
 * <p>The destination's report counts what it met: {@code hits} references it checked,
 * {@code acrossGuests} of them to another guest, {@code stale} of them stale; it keeps no index,
 * so its {@code misses}, {@code evictions} and {@code indexBytes} are 0. In post-copy only the
 * destination's {@code stale} is exact: the source's counts the pages the post-copy barrier's
 * STALE named, not those the destination asked for again at once and received before it.
 */
public record DedupReport(long hits, long acrossGuests, long misses, long evictions, long stale, long indexBytes) {
    /** Adds this report as the {@code dedup} member of {@code json}. */
    public void putJsonMembers(ObjectNode json) {
        json.putObject("dedup")
                .put("hits", hits)
                .put("acrossGuests", acrossGuests)
                .put("misses", misses)
                .put("evictions", evictions)
                .put("stale", stale)
                .put("indexBytes", indexBytes);
    }
}
