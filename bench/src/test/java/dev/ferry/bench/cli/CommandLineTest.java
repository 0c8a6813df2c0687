package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Configuration;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The real command line, run in this process: help, version, and what a bad command line gets (exit 2, one line). */
class CommandLineTest {
    @TempDir
    Path dir;

    /** What one run printed and returned. */
    private record Run(int status, String out, String err) {
    }

    private static Run ferry(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Ferry.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @ParameterizedTest
    @ValueSource(strings = {"bench", "source", "dest", "matrix", "trace-info", "jmh", "help"})
    void everyCommandHasItsOwnHelpUnderBothNames(String command) {
        for (String flag : List.of("-h", "--help")) {
            Run run = ferry(command, flag);
            assertEquals(0, run.status(), run.err());
            assertTrue(run.out().startsWith("Usage: ferry " + command), run.out());
            assertTrue(run.out().contains("Exit status:"), run.out());
            assertEquals("", run.err());
        }
        Run viaHelp = ferry("help", command);
        assertEquals(0, viaHelp.status());
        assertEquals(ferry(command, "--help").out(), viaHelp.out());
    }

    @Test
    void helpOfFerryListsTheCommandsAndTheUnits() {
        Run run = ferry("--help");
        assertEquals(0, run.status());
        for (String command : List.of("bench", "source", "dest", "matrix", "trace-info", "jmh")) {
            assertTrue(run.out().contains("\n  " + command + " "), command + " in " + run.out());
        }
        assertTrue(run.out().contains("800mbit"), run.out());
        Run none = ferry();
        assertEquals(2, none.status(), "no command is a usage error");
        assertTrue(none.out().startsWith("Usage: ferry"), none.out());
    }

    @Test
    void versionIsTheMavenProjectVersion() throws Exception {
        String pom = Files.readString(Path.of(System.getProperty("user.dir"), "pom.xml"));
        String version = pom.substring(pom.indexOf("<version>", pom.indexOf("<parent>")) + "<version>".length());
        version = version.substring(0, version.indexOf('<'));
        for (String[] args : List.of(new String[] {"--version"}, new String[] {"-V"}, new String[] {"bench", "--version"},
                new String[] {"dest", "-V"})) {
            Run run = ferry(args);
            assertEquals(0, run.status());
            assertEquals("ferry " + version, run.out().strip());
        }
    }

    @Test
    void aMistypedOptionGetsOneLineWithTheOptionMeant() {
        Run run = ferry("bench", "--downtime-limt", "5");
        assertEquals(2, run.status());
        assertEquals(1, run.err().lines().count(), run.err());
        assertTrue(run.err().startsWith("ferry bench: Unknown option"), run.err());
        assertTrue(run.err().contains("did you mean --downtime-limit?"), run.err());
        assertEquals("", run.out(), "nothing ran");

        Run command = ferry("bnech");
        assertEquals(2, command.status());
        assertTrue(command.err().contains("did you mean bench?"), command.err());
    }

    @Test
    void badValuesAreOneLineUsageErrorsNamingTheOption() {
        for (String[] args : List.of(new String[] {"bench", "--max-bandwidth", "fast"},
                new String[] {"bench", "--memory", "lots"}, new String[] {"matrix", "--channels", "1,0"},
                new String[] {"matrix", "--repeat", "0"}, new String[] {"dest", "--listen", "nowhere"},
                new String[] {"bench", "--json"})) {
            Run run = ferry(args);
            assertEquals(2, run.status(), String.join(" ", args));
            assertEquals(1, run.err().lines().count(), run.err());
            assertTrue(run.err().contains("'" + args[1] + "'"), run.err());
        }
    }

    @Test
    void ratesAndSizesTakeUnits() {
        assertEquals(1L << 30, Ferry.parse("bench", List.of("--max-bandwidth", "1g/s")).value(Configuration.MAX_BANDWIDTH));
        assertEquals(100L << 20, Ferry.parse("source", List.of("--max-bandwidth=100M")).value(Configuration.MAX_BANDWIDTH));
        assertEquals(50_000_000L, Ferry.parse("bench", List.of("--max-bandwidth", "400mbit"))
                .value(Configuration.MAX_BANDWIDTH));
        assertEquals(List.of(0L, 100L << 20, 125_000_000L),
                Ferry.parse("matrix", List.of("--max-bandwidth", "0,100m,1gbit")).get(cliOption("matrix", "max-bandwidth")));
        assertEquals(64L << 20, Ferry.parse("bench", List.of("--xbzrle-cache-size", "64m"))
                .value(Configuration.XBZRLE_CACHE_SIZE));
    }

    private static CliOption cliOption(String command, String name) {
        return (command.equals("matrix") ? BenchCommand.MATRIX : BenchCommand.BENCH).stream()
                .filter(o -> o.name().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void anOutputThatCannotBeWrittenStopsTheRunBeforeItStarts() throws Exception {
        Path file = Files.writeString(dir.resolve("plain-file"), "x");
        for (String[] args : List.of(new String[] {"bench", "--json", file.resolve("report.json").toString()},
                new String[] {"bench", "--report", dir.toString()},
                new String[] {"dest", "--json", file.resolve("x.json").toString()},
                new String[] {"matrix", "--runs-dir", file.resolve("runs").toString()},
                new String[] {"matrix", "--markdown", dir.toString()})) {
            Run run = ferry(args);
            assertEquals(2, run.status(), String.join(" ", args) + ": " + run.err());
            assertEquals(1, run.err().lines().count(), run.err());
            assertFalse(run.out().contains("outcome") || run.out().contains("listening"), "nothing ran: " + run.out());
        }
        Path nested = dir.resolve("a/b/report.json");
        assertEquals(nested, Ferry.parse("bench", List.of("--json", nested.toString())).get(cliOption("bench", "json")),
                "directories still to be made are fine");
    }

    @Test
    void aPortInUseIsAOneLineUsageError() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            String address = "127.0.0.1:" + taken.getLocalPort();
            Run run = ferry("dest", "--listen", address);
            assertEquals(2, run.status(), run.err());
            assertEquals(1, run.err().lines().count(), run.err());
            assertTrue(run.err().startsWith("ferry dest: cannot listen on " + address + ": "), run.err());
            assertFalse(run.out().contains("listening"), run.out());
        }
    }

    @Test
    void aMissingTraceFileIsAOneLineUsageError() {
        Path missing = dir.resolve("no-such.mtrace.zst");
        Run info = ferry("trace-info", missing.toString());
        assertEquals(2, info.status());
        assertEquals("ferry trace-info: no such trace file: " + missing, info.err().strip());
        Run bench = ferry("bench", "--workload", "trace:" + missing, "--memory", "16m");
        assertEquals(2, bench.status(), bench.err());
        assertEquals("ferry bench: no such trace file: " + missing, bench.err().strip());
        Run none = ferry("trace-info");
        assertEquals(2, none.status());
        assertTrue(none.err().contains("TRACE"), none.err());
    }
}
