package dev.ferry.bench.report;

import dev.ferry.core.GuestMemory;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.ToDoubleFunction;

/**
 * A migration report as one self-contained HTML page: inline SVG charts and CSS, no script, no
 * external resource, so it opens anywhere and can be mailed around. It is built from the JSON
 * text the report writes (and carries that text at the end), so page and JSON never disagree.
 */
public final class HtmlReport {
    private static final String STYLE = """
            body { font: 14px/1.45 system-ui, sans-serif; color: #1d232a; margin: 24px auto; max-width: 1160px; padding: 0 16px; }
            h1 { font-size: 22px; margin: 0 0 4px; }
            h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d8dee4; padding-bottom: 4px; }
            .sub { color: #57606a; margin: 0 0 16px; }
            .cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; }
            .card { border: 1px solid #d8dee4; border-radius: 6px; padding: 8px 12px; }
            .card .k { color: #57606a; font-size: 12px; }
            .card .v { font-size: 18px; font-weight: 600; }
            .ok { color: #1a7f37; } .bad { color: #cf222e; }
            .charts { display: grid; grid-template-columns: repeat(2, 1fr); gap: 12px; }
            figure { margin: 0; border: 1px solid #d8dee4; border-radius: 6px; padding: 8px; }
            figcaption { font-weight: 600; margin-bottom: 2px; }
            figure p { color: #57606a; margin: 0 0 4px; font-size: 12px; }
            svg.chart { width: 100%; height: auto; }
            svg .grid { stroke: #eaeef2; } svg .axis { stroke: #57606a; }
            svg .tick, svg .legend, svg .axis-title, svg .rule-label { font-size: 11px; fill: #57606a; }
            svg .s0 { fill: #0969da; } svg .s1 { fill: #fb8f44; } svg .s2 { fill: #8250df; }
            svg .s3 { fill: #1a7f37; } svg .s4 { fill: #bf3989; } svg .s5 { fill: #6e7781; }
            svg .rule { stroke-width: 1.5; stroke-dasharray: 6 4; } svg .rule.r0 { stroke: #cf222e; } svg .rule.r1 { stroke: #1a7f37; }
            svg text.rule-label.r0 { fill: #cf222e; } svg text.rule-label.r1 { fill: #1a7f37; } svg text.rule-label.r2 { fill: #8250df; }
            svg .rule.r2 { stroke: #8250df; }
            svg text.rule-label, svg text.span-label { paint-order: stroke; stroke: #ffffff; stroke-width: 3px; }
            svg text.span-label { font-size: 11px; fill: #1d232a; }
            svg .k-setup { fill: #d0d7de; } svg .k-bulk { fill: #0969da; } svg .k-iterate { fill: #54aeff; }
            svg .k-stop-and-copy { fill: #cf222e; } svg .k-postcopy { fill: #fb8f44; } svg .k-downtime { fill: #8250df; }
            svg .k-other { fill: #6e7781; }
            svg .line { fill: none; stroke-width: 2; } svg .line.l0 { stroke: #0969da; } svg .line.l1 { stroke: #fb8f44; }
            svg .hit { fill: transparent; }
            .wide { grid-column: 1 / -1; }
            .meta { color: #57606a; font-size: 12px; margin: -10px 0 16px; }
            table { border-collapse: collapse; font-size: 13px; }
            th, td { border-bottom: 1px solid #eaeef2; padding: 3px 10px; text-align: right; }
            th { color: #57606a; font-weight: 600; } td.l, th.l { text-align: left; }
            pre { background: #f6f8fa; padding: 8px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
            .none { color: #57606a; font-style: italic; }
            """;

    private HtmlReport() {
    }

    /** The page for the report {@code json} (as {@code ferry bench --json} writes it). */
    public static String render(String json) {
        RunReport r = RunReport.parse(json);
        StringBuilder h = new StringBuilder(16_384);
        String heading = r.mode() + " migration of " + r.workload();
        h.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>ferry: ")
                .append(Xml.escape(heading)).append("</title>\n<style>\n").append(STYLE).append("</style>\n</head>\n<body>\n")
                .append("<h1>").append(Xml.escape(heading)).append("</h1>\n<p class=\"sub\">")
                .append(Xml.escape(Units.memory(r.memoryBytes()) + " guest; stages "
                        + (r.capabilities().isEmpty() ? "none" : String.join(", ", r.capabilities()))
                        + "; max-bandwidth " + (r.maxBandwidth() > 0 ? Units.bytesPerSecond(r.maxBandwidth()) : "unlimited")))
                .append("</p>\n");
        metadata(h, r);
        summary(h, r);
        h.append("<h2>Time line</h2>\n<div class=\"charts\">\n");
        timeline(h, r);
        h.append("</div>\n<h2>Downtime: estimate against actual</h2>\n<div class=\"charts\">\n");
        downtime(h, r);
        h.append("</div>\n<h2>Rounds</h2>\n<div class=\"charts\">\n");
        rounds(h, r);
        h.append("</div>\n<h2>Bytes per stage</h2>\n<div class=\"charts\">\n");
        stages(h, r);
        h.append("</div>\n<h2>Post-copy</h2>\n");
        postcopy(h, r);
        faults(h, r);
        h.append("<h2>Every round</h2>\n");
        roundTable(h, r);
        h.append("<h2>Report JSON</h2>\n<details><summary>the text this page was built from</summary><pre>")
                .append(Xml.escape(json.strip())).append("</pre></details>\n</body>\n</html>\n");
        return h.toString();
    }

    private static void summary(StringBuilder h, RunReport r) {
        h.append("<div class=\"cards\">\n");
        card(h, "outcome", r.outcome() + (r.verified() ? ", verified" : ", not verified"), r.succeeded() ? "ok" : "bad");
        card(h, "total time", Units.millis(r.totalTimeMs()), null);
        card(h, "setup", r.timeline() == null || Double.isNaN(r.timeline().setupMs()) ? "n/a"
                : Units.millis(r.timeline().setupMs()), null);
        card(h, "downtime", r.downtimeMs() < 0 ? "not handed over" : Units.millis(r.downtimeMs()), null);
        card(h, "expected downtime (limit)", (r.expectedDowntimeMs() < 0 ? "n/a" : Units.millis(r.expectedDowntimeMs()))
                + " (" + Units.millis(r.downtimeLimitMs()) + ")", null);
        card(h, "bytes sent", Units.bytes(r.bytesSent()), null);
        card(h, "pages sent", Units.count(r.pagesSent()), null);
        card(h, "rounds", Integer.toString(r.rounds().size()), null);
        card(h, "throughput vs raw loopback", Double.isNaN(r.throughputVsLoopback()) ? "n/a"
                : Units.trim(r.throughputVsLoopback() * 100) + " %", null);
        if (r.destinationOutcome() != null) {
            card(h, "destination", r.destinationOutcome(), r.destinationOutcome().equals("COMPLETED") ? "ok" : "bad");
        }
        if (r.error() != null) {
            card(h, "error", r.error(), "bad");
        }
        h.append("</div>\n");
    }

    /** What ran where: Ferry's version, the date, the host, the transport and the page channels. */
    private static void metadata(StringBuilder h, RunReport r) {
        RunReport.Metadata m = r.metadata();
        List<String> parts = new ArrayList<>();
        parts.add("ferry " + (m.ferryVersion() == null ? "(version not recorded)" : m.ferryVersion()));
        parts.add(m.startedAt() == null ? "date not recorded" : "started " + m.startedAt());
        parts.add("host " + (m.host() == null ? "not recorded" : m.host()));
        parts.add("transport " + (m.transport() == null ? "not recorded" : m.transport()));
        if (m.tls() != null) {
            parts.add("tls " + m.tls());
        }
        if (m.channels() > 0) {
            parts.add(m.channels() + (m.channels() == 1 ? " page channel" : " page channels"));
        }
        h.append("<p class=\"meta\">").append(Xml.escape(String.join(" \u00b7 ", parts))).append("</p>\n");
    }

    /**
     * The run on one time axis, each round as wide as it lasted, and the dirty rate of each
     * round against its bandwidth. Round times come from the report's timeline; a report
     * without one lays the rounds end to end from 0.
     */
    private static void timeline(StringBuilder h, RunReport r) {
        List<RunReport.Round> rounds = r.rounds();
        if (rounds.isEmpty()) {
            h.append("<p class=\"none\">no rounds in this report (a destination's report has none)</p>\n");
            return;
        }
        RunReport.Timeline t = r.timeline();
        double setup = t == null || Double.isNaN(t.setupMs()) ? 0 : t.setupMs();
        boolean timed = t != null && t.roundEndsMs().size() == rounds.size();
        TimeChart band = new TimeChart("Time line", Units::millis);
        TimeChart rates = new TimeChart("Dirty rate against bandwidth", Units::bytesPerSecond);
        band.span(new TimeChart.Span("setup", 0, setup, "k-setup", "connect and handshake until the bulk round"));
        double start = setup;
        List<TimeChart.Step> dirty = new ArrayList<>();
        List<TimeChart.Step> bandwidth = new ArrayList<>();
        for (int i = 0; i < rounds.size(); i++) {
            RunReport.Round x = rounds.get(i);
            double end = timed ? t.roundEndsMs().get(i) : start + x.durationMs();
            double begin = Math.max(start, end - x.durationMs());
            band.span(new TimeChart.Span(roundLabel(x), begin, end, kindClass(x.kind()),
                    Units.count(x.pagesSent()) + " pages, " + Units.bytes(x.bytesSent())));
            double seconds = x.durationMs() / 1000;
            dirty.add(new TimeChart.Step(begin, end, seconds > 0 ? x.dirtyPages() * (double) GuestMemory.PAGE_SIZE / seconds : Double.NaN));
            bandwidth.add(new TimeChart.Step(begin, end, x.bandwidthBytesPerSec()));
            start = end;
        }
        if (r.downtimeMs() >= 0 && t != null && !Double.isNaN(t.pausedAtMs())) {
            band.span(new TimeChart.Span("paused", t.pausedAtMs(), t.pausedAtMs() + r.downtimeMs(), "k-downtime",
                    "the guest ran on neither side"));
        }
        String note = timed ? "" : " The report has no timeline: the rounds are laid end to end.";
        figure(h, "wide", "Time line", "The setup, each round as wide as it lasted, and the pause (source pause to "
                + "destination resume)." + note, band.svg());
        figure(h, "wide", "Dirty rate against bandwidth", "Per round: pages the guest dirtied per second x page size, "
                + "against the wire bytes per second the round reached. Pre-copy converges while the dirty rate stays "
                + "well below the bandwidth.", rates.series("dirty rate", dirty).series("bandwidth", bandwidth)
                .rule("max-bandwidth", r.maxBandwidth() > 0 ? r.maxBandwidth() : Double.NaN).svg());
    }

    private static String roundLabel(RunReport.Round x) {
        return switch (x.kind()) {
            case "bulk" -> "bulk";
            case "stop-and-copy" -> "stop-and-copy";
            case "postcopy" -> "post-copy";
            default -> "round " + x.round();
        };
    }

    private static String kindClass(String kind) {
        return switch (kind) {
            case "bulk", "iterate", "stop-and-copy", "postcopy" -> "k-" + kind;
            default -> "k-other";
        };
    }

    /** The estimator's last figure before the switch-over next to the pause measured, against the limit. */
    private static void downtime(StringBuilder h, RunReport r) {
        if (r.downtimeMs() < 0) {
            h.append("<p class=\"none\">not handed over: no downtime to compare</p>\n");
            return;
        }
        double estimate = r.expectedDowntimeMs();
        String ratio = estimate > 0 ? "; actual / estimate " + Units.trim(r.downtimeMs() / estimate) : "";
        String postcopy = r.postcopy() == null ? "" : " Post-copy: the estimate is what a stop-and-copy would have "
                + "cost at the switch; the pause was only the switch-over.";
        figure(h, null, "Estimate against actual", "The estimator's figure at the switch-over and the downtime "
                        + "measured (source pause to destination resume), against the limit" + ratio + "." + postcopy,
                new BarChart("Estimate against actual", "downtime", List.of("estimated", "actual"), Units::millis)
                        .series("downtime", new double[] {estimate >= 0 ? estimate : Double.NaN, r.downtimeMs()})
                        .rule("limit", r.downtimeLimitMs()).svg());
    }

    /** Post-copy's own figures: the faults, the pages asked for and pushed, its time, and the guest's pace. */
    private static void postcopy(StringBuilder h, RunReport r) {
        RunReport.Postcopy p = r.postcopy();
        if (p == null) {
            return;
        }
        h.append("<div class=\"cards\">\n");
        card(h, "switch-over after round", Integer.toString(p.switchoverRound()), null);
        card(h, "post-copy time", Units.millis(p.postcopyTimeMs()), null);
        card(h, "faults", Units.count(p.faults()), null);
        card(h, "fault mechanism", p.faultMechanism() == null ? "n/a" : p.faultMechanism(), null);
        card(h, "pages requested", Units.count(p.pagesRequested()), null);
        card(h, "pages pushed", Units.count(p.pagesPushed()), null);
        card(h, "recoveries", Integer.toString(p.recoveries()), p.recoveries() > 0 ? "bad" : null);
        card(h, "guest pace before / during", pace(p.guestPagesPerSecBefore()) + " / "
                + pace(p.guestPagesPerSecDuringPostcopy()), null);
        h.append("</div>\n");
    }

    private static String pace(double pagesPerSec) {
        return Double.isNaN(pagesPerSec) ? "n/a" : Units.count(pagesPerSec) + " pages/s";
    }

    private static void card(StringBuilder h, String key, String value, String css) {
        h.append("<div class=\"card\"><div class=\"k\">").append(Xml.escape(key)).append("</div><div class=\"v")
                .append(css == null ? "" : " " + css).append("\">").append(Xml.escape(value)).append("</div></div>\n");
    }

    private static void rounds(StringBuilder h, RunReport r) {
        List<RunReport.Round> rounds = r.rounds();
        if (rounds.isEmpty()) {
            h.append("<p class=\"none\">no rounds in this report (a destination's report has none)</p>\n");
            return;
        }
        List<String> labels = rounds.stream().map(x -> Integer.toString(x.round())).toList();
        figure(h, "Pages per round", "Pages sent in the round, and pages the dirty log returned after it (what the next round must send).",
                new BarChart("Pages per round", "round", labels, Units::count)
                        .series("sent", values(rounds, RunReport.Round::pagesSent))
                        .series("dirty after the round", values(rounds, RunReport.Round::dirtyPages)));
        figure(h, "Bandwidth per round", "Wire bytes of the round over its duration.",
                new BarChart("Bandwidth per round", "round", labels, Units::bytesPerSecond)
                        .series("bandwidth", values(rounds, RunReport.Round::bandwidthBytesPerSec))
                        .rule("max-bandwidth", r.maxBandwidth() > 0 ? r.maxBandwidth() : Double.NaN));
        figure(h, "Expected downtime per round",
                "The estimator's figure after each round against the downtime limit; the green rule is the downtime measured (pause to resume).",
                new BarChart("Expected downtime per round", "round", labels, Units::millis)
                        .series("expected downtime", values(rounds, RunReport.Round::expectedDowntimeMs))
                        .rule("limit", r.downtimeLimitMs())
                        .rule("actual", r.downtimeMs() >= 0 ? r.downtimeMs() : Double.NaN));
        figure(h, "Bytes per round", "Wire bytes of each round, frame headers included.",
                new BarChart("Bytes per round", "round", labels, Units::bytes)
                        .series("bytes sent", values(rounds, RunReport.Round::bytesSent)));
    }

    private static void stages(StringBuilder h, RunReport r) {
        List<String> kinds = new ArrayList<>(r.pagesByKind().keySet());
        figure(h, "Pages per encoding", "How each page crossed: raw, or the stage that made it smallest.",
                new BarChart("Pages per encoding", "encoding", kinds, Units::count)
                        .series("pages", kinds.stream().mapToDouble(k -> r.pagesByKind().get(k)).toArray()));
        Set<String> stages = new LinkedHashSet<>();
        r.rounds().forEach(x -> stages.addAll(x.bytesSavedByStage().keySet()));
        if (r.rounds().isEmpty()) {
            return;
        }
        BarChart saved = new BarChart("Bytes saved by stage per round", "round",
                r.rounds().stream().map(x -> Integer.toString(x.round())).toList(), Units::bytes).stacked();
        for (String stage : stages) {
            saved.series(stage, r.rounds().stream()
                    .mapToDouble(x -> x.bytesSavedByStage().getOrDefault(stage, 0L)).toArray());
        }
        long total = r.rounds().stream().flatMap(x -> x.bytesSavedByStage().values().stream()).mapToLong(Long::longValue).sum();
        if (stages.isEmpty()) {
            h.append("<p class=\"none\">no stage saved a byte in any round: nothing to chart</p>\n");
            return;
        }
        figure(h, "Bytes saved by stage per round", "Page bytes minus wire payload bytes, per stage; "
                + Units.bytes(total) + " saved in all.", saved);
    }

    private static void faults(StringBuilder h, RunReport r) {
        RunReport.FaultLatency f = r.faultLatency();
        if (f == null || f.histogram().isEmpty()) {
            h.append("<p class=\"none\">").append(Xml.escape(r.mode().equals("precopy") ? "pre-copy: no faults"
                    : r.mode() + ": no fault latency in this report")).append("</p>\n");
            return;
        }
        List<String> bounds = new ArrayList<>();
        double previous = 0;
        for (RunReport.Bucket b : f.histogram()) {
            bounds.add(Double.isInfinite(b.upToMicros()) ? "> " + Units.micros(previous) : "\u2264 " + Units.micros(b.upToMicros()));
            previous = b.upToMicros();
        }
        h.append("<div class=\"charts\">\n");
        figure(h, "Fault latency", "Time a guest access waited for a missing page: p50 " + Units.micros(f.p50()) + ", p99 "
                        + Units.micros(f.p99()) + ", max " + Units.micros(f.max()) + ".",
                new BarChart("Fault latency histogram", "latency", bounds, Units::count)
                        .series("faults", f.histogram().stream().mapToDouble(RunReport.Bucket::count).toArray()));
        h.append("</div>\n");
    }

    private static void roundTable(StringBuilder h, RunReport r) {
        h.append("<table>\n<tr><th>round</th><th class=\"l\">kind</th><th>pages sent</th><th>bytes sent</th>")
                .append("<th>duration</th><th>dirty after</th><th>bandwidth</th><th>expected downtime</th>")
                .append("<th class=\"l\">compression</th></tr>\n");
        for (RunReport.Round x : r.rounds()) {
            h.append("<tr><td>").append(x.round()).append("</td><td class=\"l\">").append(Xml.escape(x.kind()))
                    .append("</td><td>").append(grouped(x.pagesSent())).append("</td><td>").append(grouped(x.bytesSent()))
                    .append("</td><td>").append(Xml.escape(Units.millis(x.durationMs()))).append("</td><td>")
                    .append(grouped(x.dirtyPages())).append("</td><td>").append(Xml.escape(Units.bytesPerSecond(x.bandwidthBytesPerSec())))
                    .append("</td><td>").append(Xml.escape(Units.millis(x.expectedDowntimeMs()))).append("</td><td class=\"l\">")
                    .append(Xml.escape(x.compressionReason())).append("</td></tr>\n");
        }
        h.append("</table>\n");
    }

    private static String grouped(long n) {
        return String.format(Locale.ROOT, "%,d", n);
    }

    private static void figure(StringBuilder h, String caption, String note, BarChart chart) {
        figure(h, null, caption, note, chart.svg());
    }

    private static void figure(StringBuilder h, String css, String caption, String note, String svg) {
        h.append(css == null ? "<figure>" : "<figure class=\"" + css + "\">").append("<figcaption>")
                .append(Xml.escape(caption)).append("</figcaption><p>").append(Xml.escape(note)).append("</p>\n")
                .append(svg).append("\n</figure>\n");
    }

    private static double[] values(List<RunReport.Round> rounds, ToDoubleFunction<RunReport.Round> f) {
        return rounds.stream().mapToDouble(f).toArray();
    }
}
