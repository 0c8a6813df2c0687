package dev.ferry.core;

import java.util.Locale;

/**
 * A minimal streaming JSON writer for reports: objects, arrays, strings, numbers, booleans.
 * Commas are placed automatically; the caller pairs begin and end calls.
 */
public final class JsonWriter {
    private final StringBuilder out = new StringBuilder();
    private boolean needComma;

    /** Opens an object (as a value, or as the value of the pending name). */
    public JsonWriter beginObject() {
        separator();
        out.append('{');
        needComma = false;
        return this;
    }

    /** Closes the innermost object. */
    public JsonWriter endObject() {
        out.append('}');
        needComma = true;
        return this;
    }

    /** Opens an array. */
    public JsonWriter beginArray() {
        separator();
        out.append('[');
        needComma = false;
        return this;
    }

    /** Closes the innermost array. */
    public JsonWriter endArray() {
        out.append(']');
        needComma = true;
        return this;
    }

    /** Writes a member name; the next value is its value. */
    public JsonWriter name(String name) {
        separator();
        string(name);
        out.append(':');
        needComma = false;
        return this;
    }

    /** A string value, or null. */
    public JsonWriter value(String value) {
        separator();
        if (value == null) {
            out.append("null");
        } else {
            string(value);
        }
        needComma = true;
        return this;
    }

    /** An integral value. */
    public JsonWriter value(long value) {
        separator();
        out.append(value);
        needComma = true;
        return this;
    }

    /** A floating value with three decimals; NaN and infinities become null. */
    public JsonWriter value(double value) {
        separator();
        if (Double.isNaN(value) || Double.isInfinite(value)) {
            out.append("null");
        } else {
            out.append(String.format(Locale.ROOT, "%.3f", value));
        }
        needComma = true;
        return this;
    }

    /** A boolean value. */
    public JsonWriter value(boolean value) {
        separator();
        out.append(value);
        needComma = true;
        return this;
    }

    /** The document so far. */
    @Override
    public String toString() {
        return out.toString();
    }

    private void separator() {
        if (needComma) {
            out.append(',');
        }
    }

    private void string(String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
