package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.bench.report.HtmlReport;
import dev.ferry.bench.report.RunReport;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/** The HTML page of a real {@code ferry bench} run: its charts carry the run's figures, and it stands alone. */
class HtmlReportTest {
    @TempDir
    static Path dir;
    private static String json;
    private static String html;
    private static String postcopyJson;
    private static String postcopyHtml;

    @BeforeAll
    static void bench() throws Exception {
        Path jsonFile = dir.resolve("run.json");
        Path htmlFile = dir.resolve("run.html");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        // a paced hot set keeps the guest dirtying across rounds, so there is more than one
        int status = Ferry.run(new String[] {"bench", "--workload", "hotset:0.25:40", "--memory", "32m", "--fill", "mixed",
                "--max-bandwidth", "40000000", "--downtime-limit", "20", "--convergence", "force",
                "--json", jsonFile.toString(), "--report", htmlFile.toString()},
                new PrintStream(out, true, StandardCharsets.UTF_8), System.err);
        // forced past the limit when it stalls: 3 says so
        assertTrue(status == 0 || status == BenchCommand.EXIT_DOWNTIME_EXCEEDED, out::toString);
        json = Files.readString(jsonFile);
        html = Files.readString(htmlFile);
        Path postJson = dir.resolve("postcopy.json");
        Path postHtml = dir.resolve("postcopy.html");
        status = Ferry.run(new String[] {"bench", "--mode", "postcopy", "--workload", "uniform:60", "--memory", "32m",
                "--max-bandwidth", "20m", "--json", postJson.toString(), "--report", postHtml.toString()},
                new PrintStream(out, true, StandardCharsets.UTF_8), System.err);
        assertEquals(0, status, out::toString);
        postcopyJson = Files.readString(postJson);
        postcopyHtml = Files.readString(postHtml);
    }

    @Test
    void bothPagesHaveEverySection() throws Exception {
        for (String page : List.of(html, postcopyHtml)) {
            parse(page);
            for (String section : List.of("<h2>Time line</h2>", "<h2>Downtime: estimate against actual</h2>",
                    "<h2>Rounds</h2>", "<h2>Bytes per stage</h2>", "<h2>Post-copy</h2>", "<h2>Every round</h2>",
                    "<h2>Report JSON</h2>", ">setup</div>")) {
                assertTrue(page.contains(section), section);
            }
        }
    }

    @Test
    void theTimeLineHasTheSetupEveryRoundAndThePauseInOrder() throws Exception {
        for (String[] run : List.of(new String[] {json, html}, new String[] {postcopyJson, postcopyHtml})) {
            RunReport report = RunReport.parse(run[0]);
            RunReport.Timeline timeline = report.timeline();
            assertTrue(timeline.setupMs() > 0, "setup measured: " + run[0]);
            assertEquals(report.rounds().size(), timeline.roundEndsMs().size());
            List<String> spans = titles(parse(run[1]), "Time line", "rect");
            assertEquals(report.rounds().size() + 2, spans.size(), "setup, every round and the pause: " + spans);
            assertTrue(spans.getFirst().startsWith("setup: 0 ms to "), spans.getFirst());
            assertTrue(spans.getLast().startsWith("paused: "), spans.getLast());
            double previousEnd = 0;
            for (int i = 0; i < report.rounds().size(); i++) {
                double end = timeline.roundEndsMs().get(i);
                // the timeline starts a little before the engine's clock does (the connect), never much
                assertTrue(end >= previousEnd && end <= report.totalTimeMs() * 1.1 + 100,
                        "round " + (i + 1) + " ends at " + end + " of " + report.totalTimeMs() + " ms");
                previousEnd = end;
            }
            List<String> steps = titles(parse(run[1]), "Dirty rate against bandwidth", "rect");
            assertEquals(report.rounds().size(), steps.stream().filter(t -> t.startsWith("bandwidth ")).count(), steps::toString);
            assertTrue(ruleTitles(parse(run[1]), "Dirty rate against bandwidth").stream()
                    .anyMatch(t -> t.startsWith("max-bandwidth ")), "against the cap");
        }
    }

    @Test
    void estimateStandsBesideActualAgainstTheLimit() throws Exception {
        Document page = parse(html);
        List<String> bars = bars(page, "Estimate against actual", "downtime");
        assertEquals(2, bars.size(), bars::toString);
        assertTrue(bars.get(0).matches("downtime estimated, downtime: [0-9.]+ ms"), bars.get(0));
        assertTrue(bars.get(1).matches("downtime actual, downtime: [0-9.]+ ms"), bars.get(1));
        assertTrue(ruleTitles(page, "Estimate against actual").contains("limit 20 ms"));
    }

    @Test
    void thePostcopyPageShowsItsFiguresAndTheRunsMetadata() {
        RunReport run = RunReport.parse(postcopyJson);
        RunReport.Postcopy p = run.postcopy();
        assertTrue(p.faults() > 0 && p.pagesPushed() > 0, postcopyJson);
        for (String card : List.of("faults", "pages requested", "pages pushed", "post-copy time", "guest pace before / during",
                "fault mechanism")) {
            assertTrue(postcopyHtml.contains("<div class=\"k\">" + card + "</div>"), card);
        }
        assertTrue(postcopyHtml.contains(">" + count(p.pagesPushed()) + "</div>"), "pages pushed figure");
        assertTrue(postcopyHtml.matches("(?s).*>post-copy time</div><div class=\"v\">[0-9.]+ ms</div>.*"), "post-copy time");
        RunReport.Metadata m = run.metadata();
        assertEquals(FerryVersion.current(), m.ferryVersion());
        for (String page : List.of(html, postcopyHtml)) {
            String meta = page.substring(page.indexOf("<p class=\"meta\">"));
            meta = meta.substring(0, meta.indexOf("</p>"));
            assertTrue(meta.contains("ferry " + FerryVersion.current()), meta);
            assertTrue(meta.contains("started 20"), meta);
            assertTrue(meta.contains("host " + m.host()), meta);
            assertTrue(meta.contains("transport " + m.transport()), meta);
        }
        assertFalse(html.contains("<div class=\"k\">pages pushed</div>"), "a pre-copy page has no post-copy figures");
    }

    private static List<String> titles(Document page, String chart, String tag) {
        List<String> titles = new ArrayList<>();
        NodeList nodes = chart(page, chart).getElementsByTagName(tag);
        for (int i = 0; i < nodes.getLength(); i++) {
            NodeList t = ((Element) nodes.item(i)).getElementsByTagName("title");
            if (t.getLength() == 1) {
                titles.add(t.item(0).getTextContent());
            }
        }
        return titles;
    }

    @Test
    void isWellFormedAndSelfContained() throws Exception {
        Document page = parse(html);
        assertEquals("html", page.getDocumentElement().getTagName());
        // the JSON at the end is data, and its "}}" no placeholder
        String markup = html.replaceAll("(?s)<pre>.*</pre>", "");
        for (String unresolved : List.of("{{", "}}", "${", "NaN", "Infinity", "%s", "%d", "null")) {
            assertFalse(markup.contains(unresolved), "unresolved " + unresolved);
        }
        assertFalse(html.contains("<script"), "needs no script");
        assertFalse(html.contains("src="), "loads nothing");
        assertFalse(html.contains("href="), "links nothing");
        assertEquals(List.of("http://www.w3.org/2000/svg"), urls(html), "the only URL is the SVG namespace");
    }

    @Test
    void chartsCarryEveryRoundOfTheRun() throws Exception {
        RunReport run = RunReport.parse(json);
        int rounds = run.rounds().size();
        assertTrue(rounds >= 2, "bulk and stop-and-copy at least: " + json);

        Document page = parse(html);
        assertEquals(rounds, bars(page, "Pages per round", "sent").size());
        assertEquals(rounds, bars(page, "Pages per round", "dirty after the round").size());
        assertEquals(rounds, bars(page, "Bandwidth per round", "bandwidth").size());
        assertEquals(rounds, bars(page, "Expected downtime per round", "expected downtime").size());
        for (int i = 0; i < rounds; i++) {
            RunReport.Round round = run.rounds().get(i);
            assertEquals("round " + round.round() + ", sent: " + count(round.pagesSent()),
                    bars(page, "Pages per round", "sent").get(i));
            // the round table holds the exact figures
            assertTrue(html.contains("<td>" + String.format(Locale.ROOT, "%,d", round.bytesSent()) + "</td>"),
                    "bytes of round " + round.round());
            assertTrue(html.contains("<td>" + String.format(Locale.ROOT, "%,d", round.dirtyPages()) + "</td>"));
        }
        assertTrue(ruleTitles(page, "Expected downtime per round").contains("limit 20 ms"));
        assertTrue(ruleTitles(page, "Expected downtime per round").stream().anyMatch(t -> t.startsWith("actual ")),
                "the measured downtime is drawn");
        assertEquals(run.pagesByKind().size(), bars(page, "Pages per encoding", "pages").size());
        assertTrue(html.contains("pre-copy: no faults"));
        assertTrue(html.contains(json.strip().replace("\"", "&quot;")), "the page carries the JSON it was built from");
    }

    @Test
    void drawsTheFaultLatencyHistogramWhenTheReportHasOne() throws Exception {
        String withFaults = "{\"faultLatencyMicros\":{\"p50\":42.0,\"p99\":910.0,\"max\":3120.0,\"histogram\":["
                + "{\"upToMicros\":10,\"count\":120},{\"upToMicros\":100,\"count\":2210},{\"upToMicros\":null,\"count\":4}]},"
                + json.strip().substring(1);
        String page = HtmlReport.render(withFaults);
        Document doc = parse(page);
        assertEquals(List.of("latency \u2264 10 \u00b5s, faults: 120", "latency \u2264 100 \u00b5s, faults: 2.21k",
                "latency > 100 \u00b5s, faults: 4"), bars(doc, "Fault latency histogram", "faults"));
        assertTrue(page.contains("p50 42 \u00b5s, p99 910 \u00b5s, max 3120 \u00b5s"));
        assertFalse(page.contains("no faults"));
    }

    private static String count(long n) {
        return n >= 1000 ? trimmed(n / 1e3) + "k" : Long.toString(n);
    }

    private static String trimmed(double v) {
        String s = v >= 100 ? String.format(Locale.ROOT, "%.0f", v)
                : v >= 10 ? String.format(Locale.ROOT, "%.1f", v) : String.format(Locale.ROOT, "%.2f", v);
        return s.contains(".") ? s.replaceAll("0+$", "").replaceAll("\\.$", "") : s;
    }

    private static Document parse(String text) throws Exception {
        return DocumentBuilderFactory.newInstance().newDocumentBuilder()
                .parse(new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)));
    }

    private static Element chart(Document page, String title) {
        NodeList svgs = page.getElementsByTagName("svg");
        for (int i = 0; i < svgs.getLength(); i++) {
            Element svg = (Element) svgs.item(i);
            if (svg.getElementsByTagName("title").item(0).getTextContent().equals(title)) {
                return svg;
            }
        }
        throw new AssertionError("no chart " + title);
    }

    /** The hover titles of the chart's bars of one series, in order. */
    private static List<String> bars(Document page, String title, String series) {
        List<String> titles = new ArrayList<>();
        NodeList rects = chart(page, title).getElementsByTagName("rect");
        for (int i = 0; i < rects.getLength(); i++) {
            NodeList t = ((Element) rects.item(i)).getElementsByTagName("title");
            if (t.getLength() == 1 && t.item(0).getTextContent().contains(", " + series + ": ")) {
                titles.add(t.item(0).getTextContent());
            }
        }
        return titles;
    }

    private static List<String> ruleTitles(Document page, String title) {
        List<String> titles = new ArrayList<>();
        NodeList lines = chart(page, title).getElementsByTagName("line");
        for (int i = 0; i < lines.getLength(); i++) {
            NodeList t = ((Element) lines.item(i)).getElementsByTagName("title");
            if (t.getLength() == 1) {
                titles.add(t.item(0).getTextContent());
            }
        }
        return titles;
    }

    private static List<String> urls(String text) {
        List<String> urls = new ArrayList<>();
        Matcher m = Pattern.compile("https?://[^\"'\\s<>]+").matcher(text);
        while (m.find()) {
            if (!urls.contains(m.group())) {
                urls.add(m.group());
            }
        }
        return urls;
    }
}
