package dev.ferry.bench.trace;

import java.util.Collections;
import java.util.Map;

/**
 * A trace's {@code meta}: a JSON object describing the guest and how it was captured. Every key
 * is optional; the known ones are exposed as strings.
 */
public final class TraceMeta {
    private final String json;
    private final Map<String, Object> fields;

    TraceMeta(String json, Map<String, Object> fields) {
        this.json = json;
        this.fields = Collections.unmodifiableMap(fields);
    }

    /** The meta exactly as stored in the trace (empty when the trace has none). */
    public String json() {
        return json;
    }

    /**
     * The members of the object: values are {@code String}, {@code Double}, {@code Boolean},
     * {@code List}, {@code Map}, or a marker whose {@code toString()} is {@code "null"}.
     */
    public Map<String, Object> fields() {
        return fields;
    }

    /** The value of {@code key} when it is a string, else the JSON-ish text of other values, or null if absent. */
    public String string(String key) {
        Object value = fields.get(key);
        return value == null ? null : value.toString();
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
