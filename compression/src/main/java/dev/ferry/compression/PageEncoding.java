package dev.ferry.compression;

/** Wire codes of page encodings (part of the protocol). */
public final class PageEncoding {
    public static final int RAW = 0;
    public static final int ZERO = 1;

    private PageEncoding() {
    }

    public static String name(int code) {
        return switch (code) {
            case RAW -> "normal";
            case ZERO -> "zero";
            default -> "unknown(" + code + ")";
        };
    }
}
