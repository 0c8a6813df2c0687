package dev.ferry.bench.trace;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A strict JSON parser (RFC 8259) for trace meta and reports read back: objects become {@code Map}s, arrays
 * {@code List}s, strings {@code String}s, numbers {@code Double}s, and {@code true}, {@code false},
 * {@code null} become {@code Boolean}s and {@link #NULL}.
 */
public final class Json {
    /** The JSON {@code null}, distinct from an absent key. */
    public static final Object NULL = new Object() {
        @Override
        public String toString() {
            return "null";
        }
    };
    /** Bounds recursion, so hostile meta cannot overflow the stack. */
    private static final int MAX_DEPTH = 256;

    /** A syntax error at character {@code index} of the text. */
    public static final class SyntaxError extends Exception {
        final int index;

        SyntaxError(int index, String message) {
            super(message);
            this.index = index;
        }
    }

    private final String text;
    private int index;

    private Json(String text) {
        this.text = text;
    }

    /** Parses {@code text}, which must hold exactly one JSON object. */
    public static Map<String, Object> parseObject(String text) throws SyntaxError {
        Json json = new Json(text);
        json.whitespace();
        if (json.peek() != '{') {
            throw new SyntaxError(json.index, "expected a JSON object ('{')");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> object = (Map<String, Object>) json.value(0);
        json.whitespace();
        if (json.index < text.length()) {
            throw new SyntaxError(json.index, "expected end of JSON text");
        }
        return object;
    }

    private Object value(int depth) throws SyntaxError {
        if (depth > MAX_DEPTH) {
            throw new SyntaxError(index, "expected JSON nested at most " + MAX_DEPTH + " deep");
        }
        whitespace();
        int c = peek();
        switch (c) {
            case '{' -> {
                return object(depth);
            }
            case '[' -> {
                return array(depth);
            }
            case '"' -> {
                return string();
            }
            case 't' -> {
                literal("true");
                return Boolean.TRUE;
            }
            case 'f' -> {
                literal("false");
                return Boolean.FALSE;
            }
            case 'n' -> {
                literal("null");
                return NULL;
            }
            default -> {
                if (c == '-' || (c >= '0' && c <= '9')) {
                    return number();
                }
                throw new SyntaxError(index, "expected a JSON value");
            }
        }
    }

    private Map<String, Object> object(int depth) throws SyntaxError {
        Map<String, Object> object = new LinkedHashMap<>();
        index++;
        whitespace();
        if (peek() == '}') {
            index++;
            return object;
        }
        while (true) {
            whitespace();
            if (peek() != '"') {
                throw new SyntaxError(index, "expected a member name (string)");
            }
            String name = string();
            whitespace();
            expect(':');
            object.put(name, value(depth + 1));
            whitespace();
            if (peek() == ',') {
                index++;
            } else if (peek() == '}') {
                index++;
                return object;
            } else {
                throw new SyntaxError(index, "expected ',' or '}' in object");
            }
        }
    }

    private List<Object> array(int depth) throws SyntaxError {
        List<Object> array = new ArrayList<>();
        index++;
        whitespace();
        if (peek() == ']') {
            index++;
            return array;
        }
        while (true) {
            array.add(value(depth + 1));
            whitespace();
            if (peek() == ',') {
                index++;
            } else if (peek() == ']') {
                index++;
                return array;
            } else {
                throw new SyntaxError(index, "expected ',' or ']' in array");
            }
        }
    }

    private String string() throws SyntaxError {
        index++;
        StringBuilder out = new StringBuilder();
        while (true) {
            int c = peek();
            if (c < 0) {
                throw new SyntaxError(index, "expected closing '\"' of string");
            }
            index++;
            if (c == '"') {
                return out.toString();
            }
            if (c < 0x20) {
                throw new SyntaxError(index - 1, "expected no control character in string");
            }
            if (c != '\\') {
                out.append((char) c);
                continue;
            }
            int e = peek();
            index++;
            switch (e) {
                case '"', '\\', '/' -> out.append((char) e);
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'n' -> out.append('\n');
                case 'r' -> out.append('\r');
                case 't' -> out.append('\t');
                case 'u' -> {
                    int code = 0;
                    for (int i = 0; i < 4; i++) {
                        int digit = Character.digit(peek(), 16);
                        if (digit < 0) {
                            throw new SyntaxError(index, "expected 4 hex digits after \\u");
                        }
                        code = code << 4 | digit;
                        index++;
                    }
                    out.append((char) code);
                }
                default -> throw new SyntaxError(index - 1, "expected a valid escape after '\\'");
            }
        }
    }

    private Double number() throws SyntaxError {
        int start = index;
        if (peek() == '-') {
            index++;
        }
        if (peek() == '0') {
            index++;
        } else if (!digits()) {
            throw new SyntaxError(index, "expected a digit in number");
        }
        if (peek() == '.') {
            index++;
            if (!digits()) {
                throw new SyntaxError(index, "expected a digit after '.' in number");
            }
        }
        if (peek() == 'e' || peek() == 'E') {
            index++;
            if (peek() == '+' || peek() == '-') {
                index++;
            }
            if (!digits()) {
                throw new SyntaxError(index, "expected a digit in exponent");
            }
        }
        return Double.valueOf(text.substring(start, index));
    }

    private boolean digits() {
        int start = index;
        while (peek() >= '0' && peek() <= '9') {
            index++;
        }
        return index > start;
    }

    private void literal(String word) throws SyntaxError {
        if (!text.startsWith(word, index)) {
            throw new SyntaxError(index, "expected '" + word + "'");
        }
        index += word.length();
    }

    private void expect(char c) throws SyntaxError {
        if (peek() != c) {
            throw new SyntaxError(index, "expected '" + c + "'");
        }
        index++;
    }

    private void whitespace() {
        while (true) {
            int c = peek();
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            index++;
        }
    }

    private int peek() {
        return index < text.length() ? text.charAt(index) : -1;
    }
}
