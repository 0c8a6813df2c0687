package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry dest} and {@code ferry source} in processes of their own over mutual TLS, with the
 * certificates {@code scripts/tls-ca.sh} makes, as the README's one line does; a destination that
 * may not listen in plaintext; {@code ferry bench --tls}.
 */
class TlsTwoProcessTest {
    @TempDir
    static Path certs;
    @TempDir
    Path dir;

    @BeforeAll
    static void makeCertificates() throws Exception {
        Process script = new ProcessBuilder("bash", Path.of("..", "scripts", "tls-ca.sh").toString(), certs.toString())
                .redirectErrorStream(true).start();
        String output = new String(script.getInputStream().readAllBytes());
        assertTrue(script.waitFor(60, TimeUnit.SECONDS), "tls-ca.sh did not finish");
        assumeTrue(script.exitValue() != 77, "no openssl here");
        assertEquals(0, script.exitValue(), output);
    }

    private static String[] tls(String who) {
        return new String[] {"--tls-cert", certs.resolve(who + ".pem").toString(), "--tls-key",
                certs.resolve(who + "-key.pem").toString(), "--tls-ca", certs.resolve("ca.pem").toString()};
    }

    private static String[] join(String[]... parts) {
        return java.util.Arrays.stream(parts).flatMap(java.util.Arrays::stream).toArray(String[]::new);
    }

    @Test
    void aMigrationBetweenTwoProcessesOverMutualTlsRefusesAnotherMigrationAndCompletes() throws Exception {
        String id = UUID.randomUUID().toString();
        Path destJson = dir.resolve("dest.json");
        try (FerryProcess dest = FerryProcess.start(dir, join(new String[] {"dest", "--listen", "127.0.0.1:0", "--json",
                destJson.toString(), "--tls-allow", "ferry-source", "--migration-id", id}, tls("dest")))) {
            int port = dest.awaitListeningPort();
            assertEquals("tls openssl, allowing ferry-source", dest.awaitLine("tls "));
            String[] source = {"source", "--connect", "127.0.0.1:" + port, "--workload", "hotset:0.1:20", "--memory", "64m",
                    "--channels", "2"};
            try (FerryProcess other = FerryProcess.start(dir, join(source, tls("source"),
                    new String[] {"--migration-id", UUID.randomUUID().toString()}))) {
                assertEquals(1, other.awaitExit(60), other::outputText);
                assertTrue(other.outputText().contains("this destination serves migration " + id), other.outputText());
            }
            try (FerryProcess rogue = FerryProcess.start(dir, join(source, tls("rogue"),
                    new String[] {"--migration-id", id}))) {
                assertEquals(1, rogue.awaitExit(60), rogue::outputText);
                assertTrue(rogue.outputText().contains("[ferry-rogue] are not in tls-allow"), rogue.outputText());
            }
            try (FerryProcess real = FerryProcess.start(dir, join(source, tls("source"),
                    new String[] {"--migration-id", id}))) {
                assertEquals(0, real.awaitExit(120), real::outputText);
            }
            assertEquals(0, dest.awaitExit(30), dest::outputText);
            String out = dest.outputText();
            assertTrue(out.contains("ferry dest: refused 127.0.0.1:") && out.contains("HELLO for migration"), out);
            assertTrue(out.contains("[ferry-rogue] are not in tls-allow [ferry-source]"), out);
        }
        assertTrue(Files.readString(destJson).contains("\"verified\": true")
                || Files.readString(destJson).contains("\"verified\":true"), Files.readString(destJson));
    }

    @Test
    void aDestinationOffLoopbackRefusesPlaintextUnlessInsecure() throws Exception {
        try (FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "0.0.0.0:0")) {
            assertEquals(1, dest.awaitExit(60), dest::outputText);
            assertTrue(dest.outputText().contains("refusing to listen on 0.0.0.0 without TLS"), dest.outputText());
        }
        try (FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "0.0.0.0:0", "--insecure")) {
            assertTrue(dest.awaitListeningPort() > 0);
        }
        try (FerryProcess dest = FerryProcess.start(dir, join(new String[] {"dest", "--listen", "0.0.0.0:0"}, tls("dest")))) {
            assertTrue(dest.awaitListeningPort() > 0);
            assertEquals("tls openssl, allowing nobody (no --tls-allow)", dest.awaitLine("tls "));
        }
    }

    @Test
    void benchRunsItsMigrationOverTls() throws Exception {
        Path json = dir.resolve("bench.json");
        try (FerryProcess bench = FerryProcess.start(dir, "bench", "--workload", "idle", "--memory", "32m", "--stages",
                "none", "--tls", certs.toString(), "--json", json.toString())) {
            assertEquals(0, bench.awaitExit(120), bench::outputText);
            assertTrue(bench.outputText().contains("tls                openssl, mutual"), bench.outputText());
        }
        String report = Files.readString(json);
        assertTrue(report.replace(" ", "").contains("\"tls\":\"openssl\""), report);
    }
}
