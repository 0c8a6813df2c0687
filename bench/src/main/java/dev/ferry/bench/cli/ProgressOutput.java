package dev.ferry.bench.cli;

import dev.ferry.core.Configuration;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.MigrationProgress;
import dev.ferry.core.ReportJson;
import dev.ferry.core.MigrationState;
import dev.ferry.core.ProgressFormat;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What {@code --progress} asks for: the terminal's status line, and with {@code json} one JSON
 * object per line (a {@link MigrationProgress}) on stdout or {@code --progress-file}, flushed
 * line by line whether or not the output is a terminal.
 */
final class ProgressOutput implements MigrationListener, AutoCloseable {
    private final ProgressDisplay display;
    private final PrintStream json;
    private final boolean ownsJson;

    private ProgressOutput(ProgressDisplay display, PrintStream json, boolean ownsJson) {
        this.display = display;
        this.json = json;
        this.ownsJson = ownsJson;
    }

    /** The output asked for; {@code stdout} takes the JSON lines unless a file is given. */
    static ProgressOutput of(Outputs outputs, PrintStream stdout) throws IOException {
        ProgressFormat format = outputs.progress();
        ProgressDisplay display = format == ProgressFormat.NONE ? new ProgressDisplay(System.err, false)
                : ProgressDisplay.forConsole();
        if (format != ProgressFormat.JSON) {
            return new ProgressOutput(display, null, false);
        }
        String file = outputs.progressFile();
        if (file.equals(Configuration.PROGRESS_FILE_DEFAULT)) {
            return new ProgressOutput(display, stdout, false);
        }
        Path path = Path.of(file).toAbsolutePath();
        Files.createDirectories(path.getParent());
        return new ProgressOutput(display, new PrintStream(Files.newOutputStream(path), false, StandardCharsets.UTF_8),
                true);
    }

    /** Whether the JSON lines go to stdout: the summary then goes to stderr, so stdout stays JSON. */
    boolean takesStdout() {
        return json != null && !ownsJson;
    }

    @Override
    public void onState(MigrationState state) {
        display.onState(state);
    }

    @Override
    public void onProgress(MigrationProgress progress) {
        display.onProgress(progress);
        if (json != null) {
            String line = ReportJson.text(progress.toJsonNode());
            synchronized (json) {
                json.println(line);
                json.flush();
            }
        }
    }

    @Override
    public void close() {
        if (ownsJson) {
            json.close();
        }
    }
}
