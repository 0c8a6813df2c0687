package dev.ferry.bench.report;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** The matrix's rows of medians as a plain-text table for the terminal and as Markdown for the README. */
public final class MatrixTable {
    private static final List<String> HEADER = List.of("mode", "stages", "workload", "max-bandwidth", "channels", "total ms",
            "downtime ms", "expected ms", "MB sent", "rounds", "verified");
    /** Columns from here on are figures, right-aligned. */
    private static final int FIRST_FIGURE = 4;

    private MatrixTable() {
    }

    /** The table's cells, one list per row, figures as printed. */
    public static List<List<String>> cells(List<Matrix.Row> rows) {
        List<List<String>> table = new ArrayList<>();
        for (Matrix.Row row : rows) {
            Matrix.Cell c = row.cell();
            table.add(List.of(c.mode(), c.stages(), c.workloadName(),
                    c.maxBandwidth() > 0 ? Units.bytesPerSecond(c.maxBandwidth()) : "unlimited",
                    Integer.toString(c.channels()),
                    figure("%.0f", row.median(RunReport::totalTimeMs)),
                    figure("%.1f", row.median(RunReport::downtimeMs)),
                    figure("%.1f", row.median(RunReport::expectedDowntimeMs)),
                    figure("%.1f", row.median(r -> r.bytesSent() / 1e6)),
                    figure("%.1f", row.median(r -> r.rounds().size())).replaceAll("\\.0$", ""),
                    row.verifiedCount() + "/" + row.attempts()));
        }
        return table;
    }

    /** Columns padded to their widest cell. */
    public static String text(List<Matrix.Row> rows) {
        List<List<String>> table = new ArrayList<>();
        table.add(HEADER);
        table.addAll(cells(rows));
        int[] widths = new int[HEADER.size()];
        for (List<String> line : table) {
            for (int i = 0; i < widths.length; i++) {
                widths[i] = Math.max(widths[i], line.get(i).length());
            }
        }
        StringBuilder out = new StringBuilder();
        for (List<String> line : table) {
            for (int i = 0; i < widths.length; i++) {
                String cell = line.get(i);
                String pad = " ".repeat(widths[i] - cell.length());
                out.append(i >= FIRST_FIGURE ? pad + cell : cell + pad).append(i + 1 < widths.length ? "  " : "");
            }
            out.append('\n');
        }
        return out.toString().replaceAll(" +\n", "\n");
    }

    /** A GitHub Markdown table, figures right-aligned. */
    public static String markdown(List<Matrix.Row> rows) {
        StringBuilder out = new StringBuilder();
        out.append("| ").append(String.join(" | ", HEADER)).append(" |\n|");
        for (int i = 0; i < HEADER.size(); i++) {
            out.append(i >= FIRST_FIGURE ? "---:|" : "---|");
        }
        out.append('\n');
        for (List<String> line : cells(rows)) {
            out.append("| ").append(String.join(" | ", line.stream().map(c -> c.replace("|", "\\|")).toList())).append(" |\n");
        }
        return out.toString();
    }

    private static String figure(String format, double value) {
        return Double.isNaN(value) ? "-" : String.format(Locale.ROOT, format, value);
    }
}
