package dev.ferry.bench.workload;

import dev.ferry.core.GuestMemory;
import java.util.Locale;
import java.util.stream.IntStream;

/** The initial contents of a synthetic guest, and the style of the bytes its writes store. */
public enum Fill {
    /** Random bytes in every page: nothing compresses or deduplicates. */
    RANDOM,
    /** Text-like ASCII (log lines of words and numbers) in every page: compresses well. */
    TEXT,
    /** Per page, chosen from the seed: about a third zero, a third text, a third random. */
    MIXED;

    /** Pages filled by one task; each chunk has its own generator, so filling is deterministic in parallel. */
    private static final int CHUNK_PAGES = 1024;

    /** The fill named {@code name} ({@code random}, {@code text}, {@code mixed}). */
    public static Fill parse(String name) {
        try {
            return valueOf(name.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown fill '" + name + "' (random, text or mixed)", e);
        }
    }

    /** Fills every page of {@code memory}; the same seed gives the same bytes. */
    public void apply(GuestMemory memory, long seed) {
        apply(memory, new PageContent(this, seed), seed);
    }

    /** Fills every page of {@code memory} from {@code content}, made of this fill and {@code seed}. */
    void apply(GuestMemory memory, PageContent content, long seed) {
        long pages = memory.pageCount();
        int chunks = (int) ((pages + CHUNK_PAGES - 1) / CHUNK_PAGES);
        IntStream.range(0, chunks).parallel().forEach(chunk -> {
            long first = (long) chunk * CHUNK_PAGES;
            content.fill(memory.segment(), first, Math.min(pages, first + CHUNK_PAGES), seed ^ chunk);
        });
    }
}
