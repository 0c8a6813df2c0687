package dev.ferry.compression;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.Random;

/** Synthetic page contents of the kinds guests hold, from a seeded Random. */
final class Pages {
    static final int PAGE = 4096;
    private static final String[] WORDS = ("the quick brown fox jumps over lazy dog key value redis set get "
            + "GET /index.html HTTP/1.1 200 OK Content-Length: 1024 {\"id\": 42, \"name\": \"ferry\"} "
            + "error warning info debug 2026-11-23T05:11:00Z").split(" ");

    private Pages() {
    }

    enum Kind { ZERO, RANDOM, SPARSE, TEXT, REPEATED }

    static byte[] page(Kind kind, Random rnd) {
        byte[] p = new byte[PAGE];
        switch (kind) {
            case ZERO -> { }
            case RANDOM -> rnd.nextBytes(p);
            case SPARSE -> {
                for (int i = 0, n = 1 + rnd.nextInt(64); i < n; i++) {
                    p[rnd.nextInt(PAGE)] = (byte) (1 + rnd.nextInt(255));
                }
            }
            case TEXT -> {
                StringBuilder sb = new StringBuilder();
                while (sb.length() < PAGE) {
                    sb.append(WORDS[rnd.nextInt(WORDS.length)]).append(rnd.nextInt(8) == 0 ? '\n' : ' ');
                }
                System.arraycopy(sb.toString().getBytes(StandardCharsets.US_ASCII), 0, p, 0, PAGE);
            }
            case REPEATED -> {
                byte[] unit = new byte[1 + rnd.nextInt(64)];
                rnd.nextBytes(unit);
                for (int i = 0; i < PAGE; i++) {
                    p[i] = unit[i % unit.length];
                }
            }
        }
        return p;
    }

    static byte[] anyPage(Random rnd) {
        Kind[] kinds = Kind.values();
        return page(kinds[rnd.nextInt(kinds.length)], rnd);
    }

    /** A copy of {@code old} changed the way a guest rewrites a page: a few runs, single bytes, a value
     * of 'x' bytes (as redis-benchmark writes), or all of it. */
    static byte[] mutate(byte[] old, Random rnd) {
        byte[] p = old.clone();
        switch (rnd.nextInt(7)) {
            case 0 -> p[rnd.nextInt(PAGE)] ^= (byte) (1 + rnd.nextInt(255));
            case 1 -> {
                for (int r = 0, runs = 1 + rnd.nextInt(8); r < runs; r++) {
                    int at = rnd.nextInt(PAGE);
                    int len = Math.min(PAGE - at, 1 + rnd.nextInt(300));
                    for (int i = at; i < at + len; i++) {
                        p[i] = (byte) rnd.nextInt(256);
                    }
                }
            }
            case 2 -> {
                for (int i = 0, n = rnd.nextInt(400); i < n; i++) {
                    p[rnd.nextInt(PAGE)] = (byte) rnd.nextInt(256);
                }
            }
            case 3 -> {
                for (int i = 0; i < PAGE; i += 2) {
                    p[i] = (byte) ~p[i];
                }
            }
            case 4 -> rnd.nextBytes(p);
            case 5 -> {
                int at = rnd.nextInt(PAGE / 2);
                java.util.Arrays.fill(p, at, at + 200 + rnd.nextInt(PAGE / 2 - 200), (byte) 'x');
            }
            default -> {
                int at = rnd.nextInt(PAGE);
                p[at] ^= 1;
                p[PAGE - 1] ^= (byte) 0x80;
                p[0] ^= 0x40;
            }
        }
        return p;
    }

    static MemorySegment nativeCopy(Arena arena, byte[] bytes) {
        MemorySegment s = arena.allocate(Math.max(1, bytes.length), 64);
        MemorySegment.copy(bytes, 0, s, ValueLayout.JAVA_BYTE, 0, bytes.length);
        return s;
    }

    static byte[] bytes(MemorySegment s, long off, int len) {
        byte[] b = new byte[len];
        MemorySegment.copy(s, ValueLayout.JAVA_BYTE, off, b, 0, len);
        return b;
    }
}
