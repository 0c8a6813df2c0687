package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.ReportJson;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.VmControl;
import dev.ferry.engine.IncomingMigration;
import dev.ferry.engine.Migration;
import dev.ferry.engine.OutgoingMigration;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a manager watches: JSON progress lines on a pipe, Prometheus text scraped mid-migration. */
class ManagerViewTest {
    private static final String ID = "6d1f0a62-0000-4000-8000-000000000042";
    private static final java.util.UUID A = java.util.UUID.fromString("00000000-0000-4000-8000-00000000000a");
    private static final java.util.UUID B = java.util.UUID.fromString("00000000-0000-4000-8000-00000000000b");
    @TempDir
    Path dir;

    private static String scrape(String url) throws Exception {
        HttpResponse<String> response = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, response.statusCode(), response.body());
        return response.body();
    }

    /** The value of the first sample of {@code metric} whose labels contain {@code label}, or -1. */
    private static double sample(String text, String metric, String label) {
        Matcher m = Pattern.compile("(?m)^" + metric + "\\{([^}]*)\\} (\\S+)$").matcher(text);
        while (m.find()) {
            if (m.group(1).contains(label)) {
                return Double.parseDouble(m.group(2));
            }
        }
        return -1;
    }

    @Test
    void progressLinesAndMetricsWhileATwoProcessMigrationRunsPiped() throws Exception {
        try (FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "127.0.0.1:0", "--metrics-port", "0",
                "--progress-file", dir.resolve("dest-progress.jsonl").toString(), "--progress", "json")) {
            String destMetrics = dest.awaitLine("metrics on ").substring("metrics on ".length());
            int port = dest.awaitListeningPort();
            try (FerryProcess source = FerryProcess.start(dir, "source", "--connect", "127.0.0.1:" + port,
                    "--workload", "hotset:0.1:20", "--memory", "128m", "--max-bandwidth", "40000000", "--progress", "json",
                    "--metrics-port", "0", "--migration-id", ID)) {
                String sourceMetrics = source.awaitLine("metrics on ").substring("metrics on ".length());
                // the output is a pipe: a line while the migration runs means the lines are not held back
                String line = source.awaitLine("{\"role\":\"source\"");
                assertTrue(source.process.isAlive(), "a progress line before the end");
                ObjectNode first = ReportJson.parseObject(line);
                assertEquals(ID, first.get("migrationId").asText());
                assertEquals(134217728L, first.get("totalBytes").asLong());
                String mid = scrape(sourceMetrics);
                String tag = "migration=\"" + ID + "\"";
                assertTrue(sample(mid, "ferry_remaining_bytes", tag) > 0, mid);
                assertTrue(sample(mid, "ferry_bytes_total", tag) > 0, mid);
                assertEquals(1.0, sample(mid, "ferry_state", "state=\"BULK\""), mid);
                String received = scrape(destMetrics);
                assertTrue(sample(received, "ferry_bytes_total", "side=\"destination\"") > 0, received);
                int exit = source.awaitExit(120);
                // 3: completed verified, but a busy machine made the pause longer than the limit, and it says so
                assertTrue(exit == 0 || exit == BenchCommand.EXIT_DOWNTIME_EXCEEDED, source.outputText());
            }
            assertEquals(0, dest.awaitExit(30), dest::outputText);
        }
        List<String> destLines = Files.readAllLines(dir.resolve("dest-progress.jsonl"));
        assertTrue(destLines.size() > 2, "the destination's progress: " + destLines);
        ObjectNode last = ReportJson.parseObject(destLines.getLast());
        assertEquals("destination", last.get("role").asText());
        assertEquals("COMPLETED", last.get("state").asText());
        assertEquals(ID, last.get("migrationId").asText(), "given none, the destination takes the source's id");
    }

    @Test
    void twoConcurrentMigrationsInOneProcessAreTwoSeries() throws Exception {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        long size = 64L << 20;
        try (GuestMemory a = GuestMemory.anonymous(size); GuestMemory b = GuestMemory.anonymous(size);
             GuestMemory ta = GuestMemory.anonymous(size); GuestMemory tb = GuestMemory.anonymous(size)) {
            a.segment().fill((byte) 1);
            b.segment().fill((byte) 2);
            MigrationParameters params = MigrationParameters.builder().maxBandwidth(20_000_000)
                    .capabilities(java.util.EnumSet.noneOf(dev.ferry.core.Capability.class)).build();
            try (IncomingMigration inA = Migration.destination(VmControl.idle()).memory(ta).migrationId(A)
                         .guest("guest-a").meterRegistry(registry).start();
                 IncomingMigration inB = Migration.destination(VmControl.idle()).memory(tb).migrationId(B)
                         .guest("guest-b").meterRegistry(registry).start();
                 OutgoingMigration outA = Migration.source(a, new DirtyBitmap(a.pageCount()), VmControl.idle())
                         .parameters(params.toBuilder().migrationId(A).build()).guest("guest-a")
                         .meterRegistry(registry).connect(inA.address()).start();
                 OutgoingMigration outB = Migration.source(b, new DirtyBitmap(b.pageCount()), VmControl.idle())
                         .parameters(params.toBuilder().migrationId(B).build()).guest("guest-b")
                         .meterRegistry(registry).connect(inB.address()).start()) {
                long deadline = System.nanoTime() + 30_000_000_000L;
                while ((outA.progress().transferredBytes() < 4_000_000 || outB.progress().transferredBytes() < 4_000_000)
                        && System.nanoTime() < deadline) {
                    LockSupport.parkNanos(1_000_000);
                }
                String text = registry.scrape();
                Files.writeString(Path.of("target", "two-migrations.prom"), text);
                for (String id : List.of(A.toString(), B.toString())) {
                    String tag = "migration=\"" + id + "\"";
                    double remaining = sample(text, "ferry_remaining_bytes", tag + ",side=\"source\"");
                    assertTrue(remaining > 0 && remaining < size, id + " remaining " + remaining + "\n" + text);
                    assertTrue(sample(text, "ferry_bytes_total", tag + ",side=\"destination\"") > 0, text);
                    assertEquals(1.0, sample(text, "ferry_state", tag + ",side=\"source\",state=\"BULK\""), text);
                }
                assertTrue(text.contains("guest=\"guest-a\"") && text.contains("guest=\"guest-b\""));
                for (OutgoingMigration out : List.of(outA, outB)) {
                    MigrationReport report = out.await(Duration.ofSeconds(60));
                    assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
                }
            }
        }
    }
}
