package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.bench.trace.TraceFormatException;
import dev.ferry.bench.trace.TraceSummary;
import dev.ferry.bench.trace.TraceWriter;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry bench --workload trace:F} on a bad trace fails with the reader's message and exit 1,
 * wherever the trace is bad: the replay stops early on a broken epoch, and the rest of the trace is
 * checked when the workload closes, so a bad checksum at the end is found too.
 */
class TraceBenchCommandTest {
    @TempDir
    Path dir;

    /** 64 pages, 8 in the image, 3 epochs of 4 pages ending at 10, 20 and 30 ms. */
    private static TraceWriter small() {
        return TraceWriter.random(64, 8, 3, 4, 21);
    }

    private record Run(int status, String out, String err, String json) {
    }

    private Run bench(Path trace) throws Exception {
        Path json = dir.resolve(trace.getFileName() + ".json");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Ferry.run(new String[] {"bench", "--workload", "trace:" + trace, "--json", json.toString()},
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8),
                Files.exists(json) ? Files.readString(json) : "");
    }

    /** The message the reader (as trace-info) gives for {@code trace}. */
    private static String readerMessage(Path trace) {
        return assertThrows(TraceFormatException.class, () -> TraceSummary.of(trace)).getMessage();
    }

    private static void assertFailsWith(Run run, String message) {
        String all = run.out + run.err;
        assertEquals(1, run.status, all);
        assertTrue(run.err.contains("ferry: workload trace:") && run.err.contains(message), all);
        assertTrue(run.out.contains("outcome            FAILED"), all);
        assertFalse(run.out.contains("outcome            COMPLETED"), all);
        assertTrue(run.json.contains("\"FAILED\"") && run.json.contains(message), run.json);
    }

    @Test
    void aValidTraceCompletes() throws Exception {
        Path trace = dir.resolve("good.mtrace.zst");
        Files.write(trace, TraceWriter.zstd(small().bytes()));
        Run run = bench(trace);
        assertEquals(0, run.status, run.out + run.err);
        assertTrue(run.out.contains("outcome            COMPLETED (verified)"), run.out);
        assertEquals("", run.err);
    }

    @Test
    void aBadChecksumAtTheEndFailsTheRun() throws Exception {
        TraceWriter w = small();
        w.checksumXor = 1;
        Path trace = dir.resolve("checksum.mtrace.zst");
        Files.write(trace, TraceWriter.zstd(w.bytes()));
        String message = readerMessage(trace);
        assertTrue(message.contains("expected checksum"), message);
        assertFailsWith(bench(trace), message);
    }

    @Test
    void anEpochTruncatedInItsDataFailsTheRun() throws Exception {
        TraceWriter w = small();
        byte[] full = w.bytes();
        // inside the last epoch's third page: its header and two pages are whole
        long lastEpoch = full.length - 12 - 16 - 4L * (8 + 4096);
        byte[] cut = Arrays.copyOf(full, (int) (lastEpoch + 16 + 2 * (8 + 4096) + 8 + 1000));
        Path trace = dir.resolve("truncated.mtrace");
        Files.write(trace, cut);
        String message = readerMessage(trace);
        assertTrue(message.startsWith("trace offset " + cut.length + ": stream ends before the trailer"), message);
        assertFailsWith(bench(trace), message);
    }
}
