package dev.ferry.bench.trace;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A trace's {@code meta}: a JSON object describing the guest and how it was captured. Every key
 * is optional; the known ones are exposed as strings.
 */
public final class TraceMeta {
    private final String json;
    private final ObjectNode fields;

    TraceMeta(String json, ObjectNode fields) {
        this.json = json;
        this.fields = fields;
    }

    /** The meta exactly as stored in the trace (empty when the trace has none). */
    public String json() {
        return json;
    }

    /** The value of {@code key} when it is a string, else the JSON text of other values, or null if absent. */
    public String string(String key) {
        JsonNode value = fields.get(key);
        return value == null ? null : value.isTextual() ? value.asText() : value.toString();
    }

    /** {@code name}, or null. */
    public String name() {
        return string("name");
    }

    /** {@code description}, or null. */
    public String description() {
        return string("description");
    }

    /** {@code workload}, or null. */
    public String workload() {
        return string("workload");
    }

    /** {@code guest}, or null. */
    public String guest() {
        return string("guest");
    }

    /** {@code capture}, or null. */
    public String capture() {
        return string("capture");
    }

    /** {@code created}, or null. */
    public String created() {
        return string("created");
    }
}
