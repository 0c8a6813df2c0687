package dev.ferry.bench.report;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs each {@code ferry bench} of a matrix in a JVM of its own, started as this one was (same
 * java, JVM flags and class path): every run starts from a cold JIT and gives all its guest
 * memory back when it exits, so no run inherits another's state. Each run's JSON and console
 * output stay in the run directory.
 */
public final class BenchProcess implements Matrix.Runner {
    /** How long a killed run gets to go away. */
    private static final long KILL_WAIT_SECONDS = 10;

    private final Path dir;
    private final long timeoutSeconds;
    private final String mainClass;

    /**
     * @param dir            where each run's {@code NAME.json} and {@code NAME.log} go
     * @param timeoutSeconds a run still going after this long is killed and counts as failed
     * @param mainClass      the {@code ferry} entry point, whose first argument is the command
     */
    public BenchProcess(Path dir, long timeoutSeconds, String mainClass) {
        this.dir = dir;
        this.timeoutSeconds = timeoutSeconds;
        this.mainClass = mainClass;
    }

    @Override
    public RunReport run(List<String> benchArgs, String name) throws IOException, InterruptedException {
        Path json = dir.resolve(name + ".json");
        Path log = dir.resolve(name + ".log");
        Files.deleteIfExists(json);
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), mainClass, "bench"));
        command.addAll(benchArgs);
        command.addAll(List.of("--json", json.toString()));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                throw new IOException("still running after " + timeoutSeconds + " s, killed; output in " + log);
            }
        } finally {
            if (process.isAlive()) {
                process.destroyForcibly().waitFor(KILL_WAIT_SECONDS, TimeUnit.SECONDS);
            }
        }
        if (!Files.isRegularFile(json)) {
            throw new IOException("exit status " + process.exitValue() + ": " + lastLine(log));
        }
        return RunReport.parse(Files.readString(json));
    }

    private static String lastLine(Path log) throws IOException {
        List<String> lines = Files.readAllLines(log);
        return lines.isEmpty() ? "no output" : lines.getLast();
    }
}
