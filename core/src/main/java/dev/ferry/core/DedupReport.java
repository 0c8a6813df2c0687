package dev.ferry.core;

/**
 * What the dedup stage did in one migration: {@code hits} pages crossed as references,
 * {@code misses} looked their content up and crossed in full, {@code evictions} index entries
 * were replaced for room, {@code stale} references named a copy that no longer held the content
 * (the destination asked for those pages and they crossed again), out of an index of
 * {@code indexBytes}.
 */
public record DedupReport(long hits, long misses, long evictions, long stale, long indexBytes) {
    public void writeJsonMembers(JsonWriter json) {
        json.name("dedup").beginObject()
                .name("hits").value(hits)
                .name("misses").value(misses)
                .name("evictions").value(evictions)
                .name("stale").value(stale)
                .name("indexBytes").value(indexBytes)
                .endObject();
    }
}
