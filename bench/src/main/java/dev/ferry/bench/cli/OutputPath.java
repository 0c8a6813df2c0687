package dev.ferry.bench.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * An output named on the command line, checked as the option is parsed: a report that cannot be
 * written must fail the command before its migration, not after it ran for minutes. Missing
 * directories on the way are fine (they are created when written); a file where a directory
 * must be, a directory where the file must be, or a place that cannot be written is not.
 */
final class OutputPath {
    private OutputPath() {
    }

    /** A file to write. */
    static Path file(String text) {
        Path path = Path.of(text).toAbsolutePath();
        if (Files.isDirectory(path)) {
            throw new IllegalArgumentException(text + " is a directory, not a file");
        }
        if (Files.exists(path) && !Files.isWritable(path)) {
            throw new IllegalArgumentException(text + " cannot be written");
        }
        writableAncestor(text, path.getParent());
        return path;
    }

    /** Writes {@code text} to {@code path} (one {@link #file} checked), creating its directories. */
    static void write(Path path, String text) throws java.io.IOException {
        Files.createDirectories(path.getParent());
        Files.writeString(path, text);
    }

    /** A directory to write files into. */
    static Path directory(String text) {
        Path path = Path.of(text).toAbsolutePath();
        writableAncestor(text, path);
        return path;
    }

    /** Fails unless the nearest existing ancestor of {@code dir} (itself included) is a writable directory. */
    private static void writableAncestor(String text, Path dir) {
        Path existing = dir;
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing == null || !Files.isDirectory(existing)) {
            throw new IllegalArgumentException(text + ": " + existing + " is not a directory");
        }
        if (!Files.isWritable(existing)) {
            throw new IllegalArgumentException(text + ": " + existing + " cannot be written");
        }
    }
}
