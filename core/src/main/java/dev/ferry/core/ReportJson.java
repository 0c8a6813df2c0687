package dev.ferry.core;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The JSON of Ferry's reports, through one Jackson {@link ObjectMapper}: reports are built as
 * trees so callers can add members of their own, and a measured figure is written with three
 * decimals, a NaN or an infinity as null (JSON has neither).
 */
public final class ReportJson {
    /** Text after the object is an error, not ignored. */
    private static final ObjectMapper MAPPER = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private ReportJson() {
    }

    /** An empty object. */
    public static ObjectNode object() {
        return MAPPER.createObjectNode();
    }

    /** Sets {@code name} to {@code value} rounded to three decimals, or to null when it is not finite. */
    public static ObjectNode put(ObjectNode node, String name, double value) {
        if (Double.isFinite(value)) {
            node.put(name, Math.round(value * 1000) / 1000.0);
        } else {
            node.putNull(name);
        }
        return node;
    }

    /** {@code node} as compact JSON text. */
    public static String text(JsonNode node) {
        try {
            return MAPPER.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a tree of JSON nodes always writes", e);
        }
    }

    /**
     * The JSON object {@code text} holds.
     *
     * @throws IllegalArgumentException when it is not JSON, or not an object, with what was wrong and where
     */
    public static ObjectNode parseObject(String text) {
        JsonNode node;
        try {
            node = MAPPER.readTree(text);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(e.getOriginalMessage() + " at character "
                    + e.getLocation().getCharOffset(), e);
        }
        if (node instanceof ObjectNode object) {
            return object;
        }
        throw new IllegalArgumentException("not a JSON object");
    }
}
