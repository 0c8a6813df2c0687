package dev.ferry.bench.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/** The version of this build, as Maven wrote it into {@code ferry.properties}. */
public final class FerryVersion {
    private static final String VERSION = load();

    private FerryVersion() {
    }

    /** {@code 0.1.0-SNAPSHOT}, say. */
    public static String current() {
        return VERSION;
    }

    private static String load() {
        try (InputStream in = FerryVersion.class.getResourceAsStream("ferry.properties")) {
            if (in == null) {
                throw new IllegalStateException("ferry.properties is missing from the build");
            }
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
