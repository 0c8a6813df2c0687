package dev.ferry.bench.workload;

import dev.ferry.core.GuestMemory;
import dev.ferry.core.NanoClock;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/**
 * Builds a {@link Workload} from its {@code --workload} spec:
 * <ul>
 * <li>{@code idle}: no writes;</li>
 * <li>{@code uniform:MBPS}: writes anywhere;</li>
 * <li>{@code hotset:FRACTION:MBPS}: writes to the first FRACTION (0 &lt; FRACTION &le; 1) of the pages;</li>
 * <li>{@code zipf:S:MBPS}: page popularity Zipf-distributed with exponent S, hot pages scattered;</li>
 * <li>{@code sequential:MBPS}: a sweep over all pages, wrapping around;</li>
 * <li>{@code trace:PATH[:SPEED]}: replays a memory trace, SPEED times as fast (default 1).</li>
 * </ul>
 * MBPS is pages dirtied per second x 4096 bytes, in 10^6 bytes per second.
 */
public final class Workloads {
    private Workloads() {
    }

    /**
     * The workload of {@code spec}.
     *
     * @param memoryBytes guest size of a synthetic workload; ignored for a trace (its header says)
     * @param fill        initial contents and write style of a synthetic workload
     * @param seed        seeds every random choice of a synthetic workload
     * @param traceLoop   whether a trace replays its epochs again after the last one
     * @throws IllegalArgumentException for a malformed spec
     * @throws UncheckedIOException     when a trace cannot be opened or its header is malformed
     */
    public static Workload parse(String spec, long memoryBytes, Fill fill, long seed, boolean traceLoop) {
        return parse(spec, memoryBytes, fill, seed, traceLoop, NanoClock.SYSTEM);
    }

    static Workload parse(String spec, long memoryBytes, Fill fill, long seed, boolean traceLoop, NanoClock clock) {
        if (spec.startsWith("trace:")) {
            return trace(spec, traceLoop, clock);
        }
        if (memoryBytes <= 0 || memoryBytes % GuestMemory.PAGE_SIZE != 0) {
            throw new IllegalArgumentException("guest memory must be a positive multiple of 4096 bytes, got "
                    + memoryBytes);
        }
        if (fill == null) {
            throw new IllegalArgumentException("a synthetic workload needs a fill");
        }
        long pages = memoryBytes / GuestMemory.PAGE_SIZE;
        String[] parts = spec.split(":", -1);
        switch (parts[0]) {
            case "idle" -> {
                arity(spec, parts, 1, "idle");
                return new SyntheticWorkload(spec, memoryBytes, fill, seed, 0, lane -> null, clock);
            }
            case "uniform" -> {
                arity(spec, parts, 2, "uniform:MBPS");
                return new SyntheticWorkload(spec, memoryBytes, fill, seed, mbps(spec, parts[1]),
                        lane -> PageChooser.uniform(pages), clock);
            }
            case "hotset" -> {
                arity(spec, parts, 3, "hotset:FRACTION:MBPS");
                double fraction = number(spec, parts[1], "FRACTION");
                if (!(fraction > 0 && fraction <= 1)) {
                    throw new IllegalArgumentException("hotset FRACTION must be in (0, 1], got " + parts[1]);
                }
                long hot = Math.max(1, (long) Math.ceil(fraction * pages));
                return new SyntheticWorkload(spec, memoryBytes, fill, seed, mbps(spec, parts[2]),
                        lane -> PageChooser.hotset(Math.min(hot, pages)), clock);
            }
            case "zipf" -> {
                arity(spec, parts, 3, "zipf:S:MBPS");
                double s = number(spec, parts[1], "S");
                if (!(s > 0) || Double.isInfinite(s)) {
                    throw new IllegalArgumentException("zipf S must be > 0, got " + parts[1]);
                }
                double mbps = mbps(spec, parts[2]);
                PageChooser.Zipf zipf = mbps > 0 ? new PageChooser.Zipf(pages, s) : null;
                return new SyntheticWorkload(spec, memoryBytes, fill, seed, mbps,
                        lane -> PageChooser.zipf(zipf), clock);
            }
            case "sequential" -> {
                arity(spec, parts, 2, "sequential:MBPS");
                double mbps = mbps(spec, parts[1]);
                int lanes = SyntheticWorkload.threads(mbps);
                return new SyntheticWorkload(spec, memoryBytes, fill, seed, mbps,
                        lane -> PageChooser.sequential(pages, lane, lanes), clock);
            }
            default -> throw new IllegalArgumentException("unknown workload '" + spec
                    + "' (idle, uniform:MBPS, hotset:FRACTION:MBPS, zipf:S:MBPS, sequential:MBPS, trace:PATH[:SPEED])");
        }
    }

    private static Workload trace(String spec, boolean loop, NanoClock clock) {
        String rest = spec.substring("trace:".length());
        double speed = 1;
        int colon = rest.lastIndexOf(':');
        if (colon > 0) {
            // A trailing ":NUMBER" is the speed; anything else after a colon is part of the path.
            try {
                speed = Double.parseDouble(rest.substring(colon + 1));
                rest = rest.substring(0, colon);
            } catch (NumberFormatException e) {
                speed = 1;
            }
        }
        if (rest.isEmpty()) {
            throw new IllegalArgumentException("trace workload needs a path: trace:PATH[:SPEED]");
        }
        try {
            return new TraceWorkload(spec, Path.of(rest), speed, loop, clock);
        } catch (IOException e) {
            throw new UncheckedIOException(rest + ": " + e.getMessage(), e);
        }
    }

    private static void arity(String spec, String[] parts, int expected, String form) {
        if (parts.length != expected) {
            throw new IllegalArgumentException("workload '" + spec + "' should be " + form);
        }
    }

    private static double mbps(String spec, String text) {
        double mbps = number(spec, text, "MBPS");
        if (!(mbps >= 0) || Double.isInfinite(mbps)) {
            throw new IllegalArgumentException("MBPS must be >= 0 in workload '" + spec + "', got " + text);
        }
        return mbps;
    }

    private static double number(String spec, String text, String what) {
        try {
            return Double.parseDouble(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(what + " is not a number in workload '" + spec + "': " + text, e);
        }
    }
}
