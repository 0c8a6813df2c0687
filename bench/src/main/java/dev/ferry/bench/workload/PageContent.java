package dev.ferry.bench.workload;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.SplittableRandom;

/**
 * Generates page contents and 64-byte writes in a {@link Fill}'s style. Text comes from a
 * pre-generated buffer of log-like lines copied in slices, so filling is memory-bound.
 */
final class PageContent {
    static final int PAGE_SIZE = 4096;
    static final int WRITE_SIZE = 64;
    private static final int TEXT_BYTES = 1 << 20;
    private static final String[] WORDS = {
        "systemd", "kernel", "sshd", "cron", "redis", "nginx", "postgres", "session", "started", "stopped",
        "accepted", "connection", "from", "port", "user", "root", "worker", "request", "GET", "POST",
        "/api/v1/items", "/index.html", "status", "200", "404", "latency", "ms", "bytes", "cache", "miss",
        "hit", "flush", "checkpoint", "complete", "warning", "error", "info", "debug", "the", "of", "to",
        "and", "a", "in", "is", "for", "on", "with", "memory", "page", "dirty", "migration", "client", "key",
    };

    private final Fill fill;
    private final long seed;
    private final MemorySegment text;

    PageContent(Fill fill, long seed) {
        this.fill = fill;
        this.seed = seed;
        this.text = MemorySegment.ofArray(generateText(new SplittableRandom(seed)));
    }

    /** Fills pages {@code from .. to-1} of {@code memory} from a generator seeded with {@code chunkSeed}. */
    void fill(MemorySegment memory, long from, long to, long chunkSeed) {
        SplittableRandom random = new SplittableRandom(chunkSeed);
        for (long page = from; page < to; page++) {
            long offset = page * PAGE_SIZE;
            switch (kind(page)) {
                case ZERO -> memory.asSlice(offset, PAGE_SIZE).fill((byte) 0);
                case TEXT -> MemorySegment.copy(text, random.nextInt(TEXT_BYTES - PAGE_SIZE), memory, offset, PAGE_SIZE);
                case RANDOM -> {
                    for (int i = 0; i < PAGE_SIZE; i += 8) {
                        memory.set(ValueLayout.JAVA_LONG_UNALIGNED, offset + i, random.nextLong());
                    }
                }
            }
        }
    }

    /**
     * Composes the 64 bytes a guest write of {@code page} stores, in the page's style, into
     * {@code staging} (the caller then stores them through its {@code PageGate}).
     */
    void compose(MemorySegment staging, long page, SplittableRandom random) {
        if (kind(page) == Kind.RANDOM) {
            for (int i = 0; i < WRITE_SIZE; i += 8) {
                staging.set(ValueLayout.JAVA_LONG_UNALIGNED, i, random.nextLong());
            }
        } else {
            // Text pages stay text; a zero page that the guest writes gets text too (structured data).
            MemorySegment.copy(text, random.nextInt(TEXT_BYTES - WRITE_SIZE), staging, 0, WRITE_SIZE);
        }
    }

    enum Kind { ZERO, TEXT, RANDOM }

    Kind kind(long page) {
        return switch (fill) {
            case RANDOM -> Kind.RANDOM;
            case TEXT -> Kind.TEXT;
            case MIXED -> switch ((int) Long.remainderUnsigned(mix(seed + page * 0x9E3779B97F4A7C15L), 3)) {
                case 0 -> Kind.ZERO;
                case 1 -> Kind.TEXT;
                default -> Kind.RANDOM;
            };
        };
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Log-like lines: a timestamp, a host, a process with a pid, then words and numbers. */
    private static byte[] generateText(SplittableRandom random) {
        StringBuilder out = new StringBuilder(TEXT_BYTES + 256);
        long millis = 1_763_870_000_000L + random.nextLong(1_000_000_000L);
        while (out.length() < TEXT_BYTES) {
            millis += random.nextInt(2000);
            appendTimestamp(out, millis);
            out.append(" ferry-guest ")
                    .append(WORDS[random.nextInt(8)]).append('[').append(random.nextInt(1, 40000)).append("]:");
            for (int w = random.nextInt(4, 14); w > 0; w--) {
                out.append(' ');
                if (random.nextInt(5) == 0) {
                    out.append(random.nextInt(100_000));
                } else {
                    out.append(WORDS[random.nextInt(WORDS.length)]);
                }
            }
            out.append('\n');
        }
        out.setLength(TEXT_BYTES);
        return out.toString().getBytes(StandardCharsets.US_ASCII);
    }

    /**
     * What {@code Instant.ofEpochMilli(millis).toString()} writes, without its formatter: C2
     * spent 3.1 s compiling {@code DateTimeFormatterBuilder}'s printer for these lines on this
     * machine's one C2 thread, so the warm-up's own compilations waited behind it and then ran
     * during the measured migration, a quarter of a core (JFR's {@code jdk.Compilation}).
     */
    static void appendTimestamp(StringBuilder out, long millis) {
        LocalDateTime t = LocalDateTime.ofEpochSecond(Math.floorDiv(millis, 1000), 0, ZoneOffset.UTC);
        out.append(t.getYear());
        pad(out.append('-'), t.getMonthValue(), 2);
        pad(out.append('-'), t.getDayOfMonth(), 2);
        pad(out.append('T'), t.getHour(), 2);
        pad(out.append(':'), t.getMinute(), 2);
        pad(out.append(':'), t.getSecond(), 2);
        int fraction = (int) Math.floorMod(millis, 1000L);
        if (fraction != 0) {
            pad(out.append('.'), fraction, 3);
        }
        out.append('Z');
    }

    private static void pad(StringBuilder out, int value, int digits) {
        for (int bound = 10; --digits > 0; bound *= 10) {
            if (value < bound) {
                out.append('0');
            }
        }
        out.append(value);
    }
}
