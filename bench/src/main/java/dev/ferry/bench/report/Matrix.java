package dev.ferry.bench.report;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;

/**
 * {@code ferry matrix}: every combination of modes x stages x workloads x bandwidths, each run
 * {@code repeat} times, reduced to one row of medians per combination.
 */
public final class Matrix {
    /** One combination: what a single {@code ferry bench} run is given on top of the common flags. */
    public record Cell(String mode, String stages, String workload, long maxBandwidth, int channels) {
        /** A workload that is a gang: {@code gang:A+B+C}, or {@code gang-within:A+B+C} without references across guests. */
        private static final String GANG = "gang:";
        private static final String GANG_WITHIN = "gang-within:";

        /** The bench flags of this cell: a gang's guests each as a {@code --vm}. */
        public List<String> args() {
            List<String> args = new ArrayList<>(List.of("--mode", mode, "--stages", stages));
            List<String> guests = guests();
            if (guests.isEmpty()) {
                args.addAll(List.of("--workload", workload));
            } else {
                guests.forEach(g -> args.addAll(List.of("--vm", g)));
                if (workload.startsWith(GANG_WITHIN)) {
                    args.add("--within-guests");
                }
            }
            args.addAll(List.of("--max-bandwidth", Long.toString(maxBandwidth), "--channels", Integer.toString(channels)));
            return args;
        }

        /** The guests' workloads of a gang cell, or none for one guest. */
        public List<String> guests() {
            String list = workload.startsWith(GANG) ? workload.substring(GANG.length())
                    : workload.startsWith(GANG_WITHIN) ? workload.substring(GANG_WITHIN.length()) : null;
            return list == null ? List.of() : Arrays.stream(list.split("\\+", -1)).toList();
        }

        /** The workload as a table shows it: a trace by its file name, not its whole path; a gang's guests so. */
        public String workloadName() {
            List<String> guests = guests();
            if (!guests.isEmpty()) {
                return workload.substring(0, workload.indexOf(':') + 1)
                        + String.join("+", guests.stream().map(Cell::shortName).toList());
            }
            return shortName(workload);
        }

        private static String shortName(String workload) {
            if (!workload.startsWith("trace:")) {
                return workload;
            }
            String rest = workload.substring("trace:".length());
            int colon = rest.lastIndexOf(':');
            String speed = "";
            if (colon > 0 && rest.substring(colon + 1).matches("[0-9.]+")) {
                speed = rest.substring(colon);
                rest = rest.substring(0, colon);
            }
            Path file = Path.of(rest).getFileName();
            return "trace:" + (file == null ? rest : file) + speed;
        }

        /** A file name for this cell's run {@code repeat}. */
        String runName(int index, int repeat) {
            String name = String.format(Locale.ROOT, "%03d-%s-%s-%s-%d-c%d-r%d", index, mode, stages, workloadName(),
                    maxBandwidth, channels, repeat);
            return name.replaceAll("[^A-Za-z0-9._-]", "_");
        }
    }

    /**
     * The runs of one cell. {@code attempts} counts every run started; {@code runs} holds the
     * reports of those that produced one (a run killed at its time limit, or whose process died,
     * has none). Medians are over the runs that completed verified, so a failure cannot pass for
     * a fast migration; {@link #verifiedCount()} says how many that is.
     */
    public record Row(Cell cell, int attempts, List<RunReport> runs) {
        public long verifiedCount() {
            return runs.stream().filter(RunReport::succeeded).count();
        }

        /** The median of {@code figure} over the verified runs, or NaN when there is none. */
        public double median(ToDoubleFunction<RunReport> figure) {
            double[] values = runs.stream().filter(RunReport::succeeded).mapToDouble(figure).sorted().toArray();
            if (values.length == 0) {
                return Double.NaN;
            }
            int mid = values.length / 2;
            return values.length % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
        }
    }

    /** Runs {@code ferry bench} with the given flags (the report's JSON path is the runner's). */
    public interface Runner {
        /**
         * @param name a file-name-safe name for this run
         * @throws IOException when the run produced no report: killed, crashed, or a bad flag
         */
        RunReport run(List<String> benchArgs, String name) throws IOException, InterruptedException;
    }

    private Matrix() {
    }

    /** Every combination, workloads outermost so a table groups by workload. */
    public static List<Cell> cells(List<String> modes, List<String> stages, List<String> workloads, List<Long> bandwidths,
            List<Integer> channels) {
        List<Cell> cells = new ArrayList<>();
        for (String workload : workloads) {
            for (String mode : modes) {
                for (String stage : stages) {
                    for (long bandwidth : bandwidths) {
                        for (int c : channels) {
                            cells.add(new Cell(mode, stage, workload, bandwidth, c));
                        }
                    }
                }
            }
        }
        return cells;
    }

    /**
     * Runs each cell {@code repeat} times, one run at a time. Repeats go round the whole matrix
     * (every cell once, then again) so a slow spell on a shared machine spreads over all rows
     * instead of skewing one.
     */
    public static List<Row> run(List<Cell> cells, int repeat, List<String> common, Runner runner, PrintStream progress)
            throws InterruptedException {
        List<List<RunReport>> reports = new ArrayList<>();
        cells.forEach(c -> reports.add(new ArrayList<>()));
        int total = cells.size() * repeat;
        int done = 0;
        for (int r = 1; r <= repeat; r++) {
            for (int i = 0; i < cells.size(); i++) {
                Cell cell = cells.get(i);
                List<String> args = new ArrayList<>(cell.args());
                args.addAll(common);
                String label = String.format(Locale.ROOT, "[%d/%d] %s %s %s %s, %d channels", ++done, total, cell.mode(),
                        cell.stages(), cell.workloadName(),
                        cell.maxBandwidth() > 0 ? Units.bytesPerSecond(cell.maxBandwidth()) : "unlimited", cell.channels());
                try {
                    RunReport report = runner.run(args, cell.runName(i + 1, r));
                    reports.get(i).add(report);
                    progress.printf(Locale.ROOT, "%s: %s%s, %s, downtime %s, %s, %d rounds%n", label, report.outcome(),
                            report.verified() ? " verified" : "", Units.millis(report.totalTimeMs()),
                            Units.millis(report.downtimeMs()), Units.bytes(report.bytesSent()), report.rounds().size());
                } catch (IOException e) {
                    progress.printf(Locale.ROOT, "%s: no report: %s%n", label, e.getMessage());
                }
            }
        }
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < cells.size(); i++) {
            rows.add(new Row(cells.get(i), repeat, List.copyOf(reports.get(i))));
        }
        return rows;
    }

    /** Splits a comma-separated flag value; an empty item is an error the caller reports. */
    public static List<String> list(String value) {
        return Arrays.stream(value.split(",", -1)).map(String::trim).toList();
    }
}
