package dev.ferry.bench.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/** A {@code ferry} command in a JVM of its own, with the test's class path; output goes to a file. */
final class FerryProcess implements AutoCloseable {
    final Process process;
    final Path output;
    private final BlockingQueue<String> lines = new ArrayBlockingQueue<>(10_000);

    private FerryProcess(Process process, Path output) {
        this.process = process;
        this.output = output;
        Thread pump = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    Files.writeString(output, line + "\n", StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.APPEND);
                    lines.offer(line);
                }
            } catch (IOException e) {
                lines.offer("<output lost: " + e + ">");
            }
        }, "ferry-process-output");
        pump.setDaemon(true);
        pump.start();
    }

    static FerryProcess start(Path dir, String... args) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-Xmx512m", "-cp", System.getProperty("java.class.path"),
                Ferry.class.getName()));
        command.addAll(List.of(args));
        Path output = Files.createTempFile(dir, args[0] + "-", ".out");
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        return new FerryProcess(process, output);
    }

    /** Waits for the destination's "listening on HOST:PORT" line and returns the port. */
    int awaitListeningPort() throws Exception {
        String line = awaitLine("listening on ");
        return Integer.parseInt(line.substring(line.lastIndexOf(':') + 1));
    }

    /** Waits (bounded) for a line of output that starts with {@code prefix}. */
    String awaitLine(String prefix) throws Exception {
        return awaitLine(line -> line.startsWith(prefix), "'" + prefix + "...'");
    }

    /** The first line (within 30 s) holding {@code text} anywhere, say a field of a JSON progress line. */
    String awaitLineContaining(String text) throws Exception {
        return awaitLine(line -> line.contains(text), "holding '" + text + "'");
    }

    private String awaitLine(java.util.function.Predicate<String> wanted, String what) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            String line = lines.poll(100, TimeUnit.MILLISECONDS);
            if (line != null && wanted.test(line)) {
                return line;
            }
            if (line == null && !process.isAlive()) {
                break;
            }
        }
        throw new AssertionError("no line " + what + "; output:\n" + Files.readString(output));
    }

    /** Waits (bounded) for the exit code. */
    int awaitExit(long seconds) throws Exception {
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("process still running after " + seconds + " s; output:\n" + Files.readString(output));
        }
        return process.exitValue();
    }

    String outputText() {
        try {
            return Files.readString(output);
        } catch (IOException e) {
            return "<output unreadable: " + e + ">";
        }
    }

    @Override
    public void close() {
        process.destroyForcibly();
    }
}
