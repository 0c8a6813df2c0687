package dev.ferry.bench.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.ReportJson;
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
 * @param postcopy           what post-copy did, or null for a run that moved by pre-copy
 * @param timeline           when the parts of the run happened, or null when the report predates it
 * @param metadata           what ran where
 */
public record RunReport(String json, String mode, String workload, long memoryBytes, String outcome, boolean verified,
        double totalTimeMs, double downtimeMs, double expectedDowntimeMs, double downtimeLimitMs, long maxBandwidth,
        long bytesSent, long pagesSent, List<String> capabilities, Map<String, Long> pagesByKind, List<Round> rounds,
        FaultLatency faultLatency, String error, String destinationOutcome, double throughputVsLoopback,
        Postcopy postcopy, Timeline timeline, Metadata metadata) {

    /**
     * Post-copy's figures; the guest's pace is pages written per second before the pause and on
     * the destination while pages were missing (NaN when the report lacks them).
     */
    public record Postcopy(int switchoverRound, long faults, long pagesRequested, long pagesPushed, double postcopyTimeMs,
            int recoveries, String faultMechanism, double guestPagesPerSecBefore, double guestPagesPerSecDuringPostcopy) {
    }

    /** Milliseconds from the start: the setup's end, the pause, and each round's end (NaN for what did not happen). */
    public record Timeline(double setupMs, double pausedAtMs, List<Double> roundEndsMs) {
    }

    /** Ferry's version, the start (ISO-8601), the host, the transport, TLS and the page channels; null or 0 when absent. */
    public record Metadata(String ferryVersion, String startedAt, String host, String transport, String tls,
            int channels) {
    }

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
        ObjectNode o;
        try {
            o = ReportJson.parseObject(json);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("report is not JSON: " + e.getMessage(), e);
        }
        List<Round> rounds = new ArrayList<>();
        for (JsonNode m : list(o, "rounds")) {
            object(m, "rounds[]");
            rounds.add(new Round((int) number(m, "round"), text(m, "kind"), (long) number(m, "pagesSent"),
                    (long) number(m, "bytesSent"), number(m, "durationMs"), (long) number(m, "dirtyPages"),
                    number(m, "bandwidthBytesPerSec"), number(m, "expectedDowntimeMs"), text(m, "compressionReason"),
                    counts(m, "bytesSavedByStage")));
        }
        JsonNode destination = o.has("destination") ? object(o.get("destination"), "destination") : null;
        return new RunReport(json, text(o, "mode"), text(o, "workload"), (long) number(o, "memoryBytes"),
                required(text(o, "outcome"), "outcome"), o.path("verified").asBoolean(false), number(o, "totalTimeMs"),
                number(o, "downtimeMs"), number(o, "expectedDowntimeMs"), number(o, "downtimeLimitMs"),
                (long) number(o, "maxBandwidth"), (long) number(o, "bytesSent"), (long) number(o, "pagesSent"),
                list(o, "capabilities").stream().map(JsonNode::asText).toList(), counts(o, "pages"), List.copyOf(rounds),
                faultLatency(o), text(o, "error"), destination == null ? null : text(destination, "outcome"),
                number(o, "throughputVsLoopback"), postcopy(o), timeline(o),
                new Metadata(text(o, "ferryVersion"), text(o, "startedAt"), text(o, "host"), text(o, "transport"),
                        text(o, "tls"), o.path("channels").asInt(0)));
    }

    private static Postcopy postcopy(JsonNode o) {
        if (!o.has("switchoverRound")) {
            return null;
        }
        return new Postcopy(o.path("switchoverRound").asInt(), (long) number(o, "faults"), (long) number(o, "pagesRequested"),
                (long) number(o, "pagesPushed"), number(o, "postcopyTimeMs"), o.path("recoveries").asInt(),
                text(o, "faultMechanism"), number(o, "guestPagesPerSecBefore"), number(o, "guestPagesPerSecDuringPostcopy"));
    }

    private static Timeline timeline(JsonNode o) {
        JsonNode t = o.get("timeline");
        if (t == null || !t.isObject()) {
            return null;
        }
        return new Timeline(number(t, "setupMs"), number(t, "pausedAtMs"),
                list(t, "roundEndsMs").stream().map(n -> n.isNumber() ? n.asDouble() : Double.NaN).toList());
    }

    private static FaultLatency faultLatency(JsonNode o) {
        if (!o.path("faultLatencyMicros").isObject()) {
            return null;
        }
        JsonNode f = o.get("faultLatencyMicros");
        List<Bucket> buckets = new ArrayList<>();
        for (JsonNode m : list(f, "histogram")) {
            object(m, "histogram[]");
            // an open last bucket may say null: everything above the previous bound
            double upTo = m.path("upToMicros").isNumber() ? m.get("upToMicros").asDouble() : Double.POSITIVE_INFINITY;
            buckets.add(new Bucket(upTo, (long) number(m, "count")));
        }
        return new FaultLatency(number(f, "p50"), number(f, "p99"), number(f, "max"), List.copyOf(buckets));
    }

    /** A member's number, NaN when it is absent or null. */
    static double number(JsonNode o, String name) {
        JsonNode v = o.get(name);
        if (v == null || v.isNull()) {
            return Double.NaN;
        }
        if (v.isNumber()) {
            return v.asDouble();
        }
        throw new IllegalArgumentException("report member " + name + " is not a number: " + v);
    }

    static String text(JsonNode o, String name) {
        JsonNode v = o.get(name);
        return v != null && v.isTextual() ? v.asText() : null;
    }

    private static String required(String value, String name) {
        if (value == null) {
            throw new IllegalArgumentException("report has no " + name);
        }
        return value;
    }

    private static List<JsonNode> list(JsonNode o, String name) {
        JsonNode v = o.get(name);
        return v != null && v.isArray() ? v.valueStream().toList() : List.of();
    }

    private static JsonNode object(JsonNode v, String name) {
        if (v.isObject()) {
            return v;
        }
        throw new IllegalArgumentException("report member " + name + " is not an object: " + v);
    }

    private static Map<String, Long> counts(JsonNode o, String name) {
        Map<String, Long> counts = new LinkedHashMap<>();
        JsonNode m = o.get(name);
        if (m != null && m.isObject()) {
            m.properties().forEach(e -> counts.put(e.getKey(), e.getValue().isNumber() ? e.getValue().asLong() : 0L));
        }
        return counts;
    }
}
