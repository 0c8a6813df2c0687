package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A two-process migration over a tbf-shaped veth between two network namespaces ({@code scripts/link.sh}),
 * with the raw-copy baseline of the same bytes over the same link. Skipped where the script cannot
 * run (not root, no namespaces): it says so with its exit code 77.
 */
class ShapedLinkTest {
    /** scripts/link.sh's exit code for "cannot run here". */
    private static final int SKIPPED = 77;

    @TempDir
    Path dir;

    @Test
    void migratesOverAShapedLinkAndMeasuresTheRawCopyOfTheSameBytes() throws Exception {
        Path root = repoRoot();
        Path out = dir.resolve("link");
        Path log = dir.resolve("link.out");
        // The jar does not exist yet while mvn verify runs the tests: launch the CLI the way FerryProcess
        // does, with this JVM and the test's class path.
        String classPath = System.getProperty("java.class.path");
        assertFalse(classPath.contains(" "), "FERRY_CMD is split on spaces; the class path has one: " + classPath);
        String ferryCmd = String.join(" ", Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xmx512m",
                "-cp", classPath, Ferry.class.getName());
        ProcessBuilder pb = new ProcessBuilder(List.of("bash", root.resolve("scripts/link.sh").toString(),
                "--rate", "400mbit", "--out", out.toString(), "--timeout", "60",
                "--", "--workload", "idle", "--memory", "64m"))
                .directory(root.toFile()).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("FERRY_CMD", ferryCmd);
        Process process = pb.start();
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            process.destroy(); // TERM: the script's trap removes its namespaces
            if (!process.waitFor(15, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
            throw new AssertionError("scripts/link.sh still running after 120 s; output:\n" + Files.readString(log));
        }
        String output = Files.readString(log);
        Assumptions.assumeTrue(process.exitValue() != SKIPPED, () -> "scripts/link.sh cannot run here: " + output.strip());
        assertEquals(0, process.exitValue(), output);

        String dest = Files.readString(out.resolve("dest.json"));
        String summary = Files.readString(out.resolve("summary.json"));
        assertEquals("COMPLETED", field(dest, "outcome"), dest);
        assertEquals("true", field(dest, "verified"), dest);
        assertEquals("COMPLETED", field(summary, "destOutcome"), summary);
        long migrationBytes = Long.parseLong(field(summary, "migrationBytes"));
        long rawBytes = Long.parseLong(field(summary, "rawBytes"));
        double rawMs = Double.parseDouble(field(summary, "rawMs"));
        assertTrue(rawBytes > 0 && rawMs > 0, "the raw copy ran: " + summary);
        assertEquals(migrationBytes, rawBytes, "the raw copy moves the bytes the migration sent");
        // tbf held the link: 400 Mbit/s is 50 MB/s; 10% over for the 256 KiB burst and rounding
        double rawMegabytesPerSec = rawBytes / 1e3 / rawMs;
        assertTrue(rawMegabytesPerSec < 55, "the link was shaped to 400 Mbit/s, yet the raw copy ran at "
                + rawMegabytesPerSec + " MB/s: " + summary);
        assertTrue(output.lines().anyMatch(l -> l.startsWith("link: rate 400mbit, migration ")), output);
    }

    /** The directory holding the {@code ferry} launcher and scripts/link.sh, from wherever surefire runs. */
    private static Path repoRoot() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("ferry")) && Files.isRegularFile(p.resolve("scripts/link.sh"))) {
                return p;
            }
        }
        throw new AssertionError("no directory with ferry and scripts/link.sh above " + Path.of("").toAbsolutePath());
    }

    private static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\":(\"((?:[^\"\\\\]|\\\\.)*)\"|[^,}\\]]+)").matcher(json);
        if (!m.find()) {
            throw new AssertionError("no field " + name + " in " + json);
        }
        return m.group(2) != null ? m.group(2) : m.group(1);
    }
}
