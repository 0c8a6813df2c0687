package dev.ferry.bench.report;

import dev.ferry.core.JsonReader;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A migration report read back from the JSON text {@code ferry bench} and {@code ferry source}
 * write, so the HTML page and the matrix use the very figures the JSON holds. Members a report
 * may lack (a source run has no destination, a pre-copy run no fault latency) read as NaN, null
 * or empty.
 *
 * @param json               the text this was read from
 * @param downtimeLimitMs    the downtime limit the run was given, NaN when the report predates it
 * @param destinationOutcome the destination's own outcome ({@code bench} only), or null
 * @param throughputVsLoopback wire throughput over the raw loopback copy ({@code bench} only), or NaN
 * @param faultLatency       post-copy's page fault latency, or null when there were no faults
 */
public record RunReport(String json, String mode, String workload, long memoryBytes, String outcome, boolean verified,
        double totalTimeMs, double downtimeMs, double expectedDowntimeMs, double downtimeLimitMs, long maxBandwidth,
        long bytesSent, long pagesSent, List<String> capabilities, Map<String, Long> pagesByKind, List<Round> rounds,
        FaultLatency faultLatency, String error, String destinationOutcome, double throughputVsLoopback) {

    /** One round as the source measured it; see {@code dev.ferry.core.RoundRecord}. */
    public record Round(int round, String kind, long pagesSent, long bytesSent, double durationMs, long dirtyPages,
            double bandwidthBytesPerSec, double expectedDowntimeMs, String compressionReason,
            Map<String, Long> bytesSavedByStage) {
    }

    /** Percentiles of the time a guest access waited for a missing page, and their histogram. */
    public record FaultLatency(double p50, double p99, double max, List<Bucket> histogram) {
    }

    /** Faults that waited at most {@code upToMicros} (and more than the previous bucket's bound). */
    public record Bucket(double upToMicros, long count) {
    }

    /** Whether the migration completed and was verified. */
    public boolean succeeded() {
        return outcome.equals("COMPLETED") && verified;
    }

    /** Reads a report; throws IllegalArgumentException when the text is not a report's JSON. */
    public static RunReport parse(String json) {
        Map<String, Object> o;
        try {
            o = JsonReader.parseObject(json);
        } catch (JsonReader.SyntaxError e) {
            throw new IllegalArgumentException("report is not JSON: " + e.getMessage(), e);
        }
        List<Round> rounds = new ArrayList<>();
        for (Object r : list(o, "rounds")) {
            Map<String, Object> m = object(r, "rounds[]");
            rounds.add(new Round((int) number(m, "round"), text(m, "kind"), (long) number(m, "pagesSent"),
                    (long) number(m, "bytesSent"), number(m, "durationMs"), (long) number(m, "dirtyPages"),
                    number(m, "bandwidthBytesPerSec"), number(m, "expectedDowntimeMs"), text(m, "compressionReason"),
                    counts(m, "bytesSavedByStage")));
        }
        Map<String, Object> destination = o.containsKey("destination") ? object(o.get("destination"), "destination") : null;
        return new RunReport(json, text(o, "mode"), text(o, "workload"), (long) number(o, "memoryBytes"),
                required(text(o, "outcome"), "outcome"), Boolean.TRUE.equals(o.get("verified")), number(o, "totalTimeMs"),
                number(o, "downtimeMs"), number(o, "expectedDowntimeMs"), number(o, "downtimeLimitMs"),
                (long) number(o, "maxBandwidth"), (long) number(o, "bytesSent"), (long) number(o, "pagesSent"),
                list(o, "capabilities").stream().map(String::valueOf).toList(), counts(o, "pages"), List.copyOf(rounds),
                faultLatency(o), text(o, "error"), destination == null ? null : text(destination, "outcome"),
                number(o, "throughputVsLoopback"));
    }

    private static FaultLatency faultLatency(Map<String, Object> o) {
        if (!(o.get("faultLatencyMicros") instanceof Map<?, ?>)) {
            return null;
        }
        Map<String, Object> f = object(o.get("faultLatencyMicros"), "faultLatencyMicros");
        List<Bucket> buckets = new ArrayList<>();
        for (Object b : list(f, "histogram")) {
            Map<String, Object> m = object(b, "histogram[]");
            // an open last bucket may say null: everything above the previous bound
            double upTo = m.get("upToMicros") instanceof Double d ? d : Double.POSITIVE_INFINITY;
            buckets.add(new Bucket(upTo, (long) number(m, "count")));
        }
        return new FaultLatency(number(f, "p50"), number(f, "p99"), number(f, "max"), List.copyOf(buckets));
    }

    private static double number(Map<String, Object> o, String name) {
        Object v = o.get(name);
        if (v == null || v == JsonReader.NULL) {
            return Double.NaN;
        }
        if (v instanceof Double d) {
            return d;
        }
        throw new IllegalArgumentException("report member " + name + " is not a number: " + v);
    }

    private static String text(Map<String, Object> o, String name) {
        Object v = o.get(name);
        return v instanceof String s ? s : null;
    }

    private static String required(String value, String name) {
        if (value == null) {
            throw new IllegalArgumentException("report has no " + name);
        }
        return value;
    }

    private static List<?> list(Map<String, Object> o, String name) {
        return o.get(name) instanceof List<?> l ? l : List.of();
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Object v, String name) {
        if (v instanceof Map<?, ?> m) {
            return (Map<String, Object>) m;
        }
        throw new IllegalArgumentException("report member " + name + " is not an object: " + v);
    }

    private static Map<String, Long> counts(Map<String, Object> o, String name) {
        Map<String, Long> counts = new LinkedHashMap<>();
        if (o.get(name) instanceof Map<?, ?> m) {
            m.forEach((k, v) -> counts.put((String) k, v instanceof Double d ? d.longValue() : 0L));
        }
        return counts;
    }
}
