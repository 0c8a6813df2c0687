package dev.ferry.bench.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;

/** How the matrix combines its flags, orders its runs and reduces them to medians. */
class MatrixTest {
    @Test
    void combinesEveryModeStageWorkloadBandwidthAndChannelCount() {
        List<Matrix.Cell> cells = Matrix.cells(List.of("precopy"), List.of("none", "auto"),
                List.of("idle", "trace:../shared/traces/guest-idle.mtrace.zst:2"), List.of(0L, 100_000_000L), List.of(1, 4));
        assertEquals(16, cells.size());
        assertEquals(new Matrix.Cell("precopy", "none", "idle", 0, 1), cells.get(0));
        assertEquals(new Matrix.Cell("precopy", "none", "idle", 0, 4), cells.get(1));
        assertEquals(new Matrix.Cell("precopy", "none", "idle", 100_000_000, 1), cells.get(2));
        assertEquals(new Matrix.Cell("precopy", "auto", "idle", 0, 1), cells.get(4));
        assertEquals("trace:guest-idle.mtrace.zst:2", cells.get(15).workloadName());
        assertEquals(List.of("--mode", "precopy", "--stages", "auto", "--workload",
                "trace:../shared/traces/guest-idle.mtrace.zst:2", "--max-bandwidth", "100000000", "--channels", "4"),
                cells.get(15).args());
    }

    @Test
    void mediansCountOnlyVerifiedRunsAndRepeatsGoRoundTheMatrix() throws Exception {
        List<Matrix.Cell> cells = List.of(new Matrix.Cell("precopy", "auto", "idle", 0, 2),
                new Matrix.Cell("precopy", "auto", "hotset:0.1:100", 0, 2));
        // run order: idle, hotset, idle, hotset, idle, hotset
        Deque<Object> results = new ArrayDeque<>(List.of(
                report(100, 10, 5_000_000, 2, true), report(400, 40, 9_000_000, 5, true),
                report(300, 30, 7_000_000, 3, true), new IOException("killed"),
                report(200, 20, 6_000_000, 2, true), report(900, 90, 8_000_000, 9, false)));
        List<String> names = new ArrayList<>();
        List<List<String>> argsSeen = new ArrayList<>();
        Matrix.Runner runner = (args, name) -> {
            names.add(name);
            argsSeen.add(args);
            Object next = results.removeFirst();
            if (next instanceof IOException e) {
                throw e;
            }
            return (RunReport) next;
        };
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        List<Matrix.Row> rows = Matrix.run(cells, 3, List.of("--memory", "32m"), runner,
                new PrintStream(progress, true, StandardCharsets.UTF_8));

        assertEquals(List.of("001-precopy-auto-idle-0-c2-r1", "002-precopy-auto-hotset_0.1_100-0-c2-r1",
                "001-precopy-auto-idle-0-c2-r2", "002-precopy-auto-hotset_0.1_100-0-c2-r2",
                "001-precopy-auto-idle-0-c2-r3", "002-precopy-auto-hotset_0.1_100-0-c2-r3"), names);
        assertEquals(List.of("--mode", "precopy", "--stages", "auto", "--workload", "idle", "--max-bandwidth", "0",
                "--channels", "2", "--memory", "32m"), argsSeen.get(0));
        Matrix.Row idle = rows.get(0);
        assertEquals(3, idle.verifiedCount());
        assertEquals(200, idle.median(RunReport::totalTimeMs));
        assertEquals(20, idle.median(RunReport::downtimeMs));
        Matrix.Row hot = rows.get(1);
        assertEquals(3, hot.attempts());
        assertEquals(2, hot.runs().size(), "the killed run left no report");
        assertEquals(1, hot.verifiedCount(), "the unverified run does not count");
        assertEquals(400, hot.median(RunReport::totalTimeMs));
        assertTrue(progress.toString(StandardCharsets.UTF_8).contains("[4/6] precopy auto hotset:0.1:100 unlimited, 2 channels: no report: killed"));

        String markdown = MatrixTable.markdown(rows);
        assertEquals(List.of(
                "| mode | stages | workload | max-bandwidth | channels | total ms | downtime ms | expected ms | MB sent | rounds | verified |",
                "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
                "| precopy | auto | idle | unlimited | 2 | 200 | 20.0 | 10.0 | 6.0 | 2 | 3/3 |",
                "| precopy | auto | hotset:0.1:100 | unlimited | 2 | 400 | 40.0 | 20.0 | 9.0 | 5 | 1/3 |"),
                markdown.lines().toList());
        assertEquals(List.of(
                "mode     stages  workload        max-bandwidth  channels  total ms  downtime ms  expected ms  MB sent  rounds  verified",
                "precopy  auto    idle            unlimited             2       200         20.0         10.0      6.0       2       3/3",
                "precopy  auto    hotset:0.1:100  unlimited             2       400         40.0         20.0      9.0       5       1/3"),
                MatrixTable.text(rows).lines().toList());
    }

    @Test
    void anEvenNumberOfRunsTakesTheMeanOfTheMiddleTwo() {
        Matrix.Row row = new Matrix.Row(new Matrix.Cell("precopy", "none", "idle", 0, 2), 4, List.of(
                report(100, 1, 1, 2, true), report(400, 1, 1, 3, true), report(300, 1, 1, 2, true), report(200, 1, 1, 3, true)));
        assertEquals(250, row.median(RunReport::totalTimeMs));
        assertEquals("2.5", MatrixTable.cells(List.of(row)).get(0).get(9), "rounds");
        Matrix.Row none = new Matrix.Row(row.cell(), 1, List.of(report(100, 1, 1, 2, false)));
        assertEquals(List.of("-", "-", "-", "-", "-", "0/1"), MatrixTable.cells(List.of(none)).get(0).subList(5, 11));
    }

    /** A report as bench writes it, with {@code rounds} rounds; expected downtime is half the downtime. */
    private static RunReport report(double totalMs, double downtimeMs, long bytes, int rounds, boolean verified) {
        StringBuilder r = new StringBuilder();
        for (int i = 1; i <= rounds; i++) {
            r.append(i > 1 ? "," : "").append(String.format(Locale.ROOT, "{\"round\":%d,\"kind\":\"iterate\",\"pagesSent\":1,"
                    + "\"bytesSent\":4096,\"durationMs\":1.0,\"dirtyPages\":0,\"bandwidthBytesPerSec\":4096000,"
                    + "\"expectedDowntimeMs\":0.0,\"compressed\":false,\"compressionReason\":\"off\",\"bytesSavedByStage\":{}}", i));
        }
        return RunReport.parse(String.format(Locale.ROOT, "{\"role\":\"source\",\"mode\":\"precopy\",\"memoryBytes\":33554432,"
                + "\"pageSize\":4096,\"outcome\":\"%s\",\"verified\":%s,\"totalTimeMs\":%.3f,\"downtimeMs\":%.3f,"
                + "\"expectedDowntimeMs\":%.3f,\"bytesSent\":%d,\"pagesSent\":8192,\"capabilities\":[],\"pages\":{\"raw\":8192},"
                + "\"rounds\":[%s],\"workload\":\"idle\"}", verified ? "COMPLETED" : "FAILED", verified, totalMs, downtimeMs,
                downtimeMs / 2, bytes, r));
    }
}
